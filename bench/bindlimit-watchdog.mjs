// Runs a bench in a child process and kills it if its resident memory passes a bound, or if the machine's available
// memory falls below a floor, so that a full-size run on a shared machine cannot push other jobs into the OOM killer.
// Polls /proc/<pid>/status (VmRSS) and /proc/meminfo (MemAvailable) every 2 s, prints the RSS every minute and the
// largest value seen when the child ends.
// Usage: node bench/bindlimit-watchdog.mjs [--max-gb 15] [--min-available-gb 1] -- <script> [args...]
//   (e.g. -- bench/bindlimit-vxm.mjs)
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

const sep = process.argv.indexOf('--');
if (sep < 0 || !process.argv[sep + 1]) throw new Error('usage: node bench/bindlimit-watchdog.mjs [--max-gb N] -- <script> [args...]');
function option(name, fallback) {
  const at = process.argv.indexOf(name);
  const v = at >= 0 && at < sep ? Number(process.argv[at + 1]) : fallback;
  if (!(v >= 0)) throw new Error(`${name} must be a number >= 0, got ${process.argv[at + 1]}`);
  return v;
}
const maxGB = option('--max-gb', 15);
const minAvailableGB = option('--min-available-gb', 1);
const child = spawn(process.execPath, process.argv.slice(sep + 1), { stdio: 'inherit' });
const t0 = Date.now();
let maxKB = 0;
let killed = false;
let polls = 0;
const poll = setInterval(() => {
  let status;
  try {
    status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
  } catch {
    return; // the child has exited; 'exit' reports it
  }
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const availableKB = Number(/MemAvailable:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? Infinity);
  maxKB = Math.max(maxKB, kb);
  const seconds = ((Date.now() - t0) / 1000).toFixed(0);
  if (++polls % 30 === 0) console.log(`watchdog: ${seconds} s, RSS ${(kb / 1e6).toFixed(2)} GB, machine has ${(availableKB / 1e6).toFixed(2)} GB available`);
  const reason =
    kb > maxGB * 1e6 ? `RSS ${(kb / 1e6).toFixed(2)} GB passed ${maxGB} GB`
    : availableKB < minAvailableGB * 1e6 ? `the machine's available memory fell to ${(availableKB / 1e6).toFixed(2)} GB (RSS ${(kb / 1e6).toFixed(2)} GB)`
    : null;
  if (reason && !killed) {
    killed = true;
    console.log(`watchdog: ${reason} after ${seconds} s: killing the run`);
    child.kill('SIGKILL');
  }
}, 2000);
child.on('exit', (code, signal) => {
  clearInterval(poll);
  console.log(`watchdog: child ${signal ? `killed by ${signal}` : `exited ${code}`} after ${((Date.now() - t0) / 1000).toFixed(0)} s; max RSS ${(maxKB / 1e6).toFixed(2)} GB (polled every 2 s)`);
  process.exit(killed || code !== 0 ? 1 : 0);
});
