/**
 * Node platform: vg.io paths through `fs`, with atomic writes (temp file, fsync, rename; the next write of the same
 * file removes the temp files of writers killed mid-write). Imported by src/node.ts.
 */
import { mkdir, open, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setFileSystem } from './files.js';

/** A writer's temp file for `path`: `<name>.tmp-<pid>-<random>`, so a later writer knows whose it is. */
const tempPrefix = (path: string) => `${basename(path)}.tmp-`;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists but belongs to someone else
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the temp files of `path` left by writers that died mid-write (SIGKILL, power loss: their process is gone).
 * Temp files of live processes, this one included, are another save in flight and stay.
 */
async function removeStaleTemps(path: string): Promise<void> {
  const prefix = tempPrefix(path);
  const dir = dirname(path);
  for (const name of await readdir(dir)) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(/^([0-9]+)-/.exec(name.slice(prefix.length))?.[1]);
    if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && !isAlive(pid)) await rm(join(dir, name), { force: true });
  }
}

setFileSystem({
  async readFile(path) {
    return new Uint8Array(await readFile(path));
  },
  async writeFileAtomic(path, bytes) {
    await removeStaleTemps(path);
    const temp = join(dirname(path), `${tempPrefix(path)}${process.pid}-${randomBytes(4).toString('hex')}`);
    const handle = await open(temp, 'w');
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await rename(temp, path);
    } catch (e) {
      await rm(temp, { force: true });
      throw e;
    }
  },
  async mkdir(path) {
    await mkdir(path, { recursive: true });
  },
  async exists(path) {
    return stat(path).then(() => true, () => false);
  },
  readdir(path) {
    return readdir(path);
  },
});
