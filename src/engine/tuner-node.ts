/**
 * Node platform: the tuner's choices in a JSON file per adapter, `<cache>/voxgrad/tuning-<adapter key>.json`, where
 * <cache> is $XDG_CACHE_HOME or ~/.cache; VOXGRAD_TUNING_DIR names another folder, and VOXGRAD_TUNING_DIR=off keeps
 * the choices in memory only. Writes are atomic (a temp file of this process, then rename), so concurrent processes
 * never read half a file; the last writer wins. A missing or unreadable file means no choices yet: the heuristics run
 * until vg.tune() measures. Imported by src/node.ts.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { setTuningStore } from './tuner.js';

const FORMAT = 1;

function folder(): string | null {
  const dir = process.env.VOXGRAD_TUNING_DIR;
  if (dir === 'off') return null;
  return dir || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'voxgrad');
}

const fileOf = (dir: string, adapter: string) => join(dir, `tuning-${adapter}.json`);

const dir = folder();
if (dir)
  setTuningStore({
    load(adapter) {
      let text: string;
      try {
        text = readFileSync(fileOf(dir, adapter), 'utf8');
      } catch {
        return null;
      }
      try {
        const data = JSON.parse(text) as { format?: unknown; choices?: unknown };
        if (data.format !== FORMAT || typeof data.choices !== 'object' || data.choices === null) return null;
        return Object.fromEntries(Object.entries(data.choices).filter((e): e is [string, string] => typeof e[1] === 'string'));
      } catch {
        return null;
      }
    },
    save(adapter, choices, about) {
      mkdirSync(dir, { recursive: true });
      const file = fileOf(dir, adapter);
      const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
      writeFileSync(tmp, JSON.stringify({ format: FORMAT, adapter: about, choices }, null, 1));
      renameSync(tmp, file);
    },
    where: (adapter) => fileOf(dir, adapter),
  });
