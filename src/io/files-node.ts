/** Node platform: vg.io paths through `fs`, with atomic writes (temp file, fsync, rename). Imported by src/node.ts. */
import { mkdir, open, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { setFileSystem } from './files.js';

setFileSystem({
  async readFile(path) {
    return new Uint8Array(await readFile(path));
  },
  async writeFileAtomic(path, bytes) {
    const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
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
