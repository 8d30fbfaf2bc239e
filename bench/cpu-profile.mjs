// Preloaded into the system's processes by `sagas bench --profile <dir>` (NODE_OPTIONS=--import=…,
// since Node refuses --cpu-prof in NODE_OPTIONS): samples the CPU from start to exit and writes
// <dir>/<process title>-<pid>.cpuprofile, which Chrome DevTools (Performance tab) or
// `node bench/profile-summary.mjs <file>` can read. A process killed with SIGKILL writes nothing.
import fs from 'node:fs';
import path from 'node:path';
import { Session } from 'node:inspector';

const dir = process.env.BENCH_CPU_PROF_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 500 });
  session.post('Profiler.start');
  process.once('exit', () => {
    // An in-thread session answers synchronously, so this runs to completion inside 'exit'.
    session.post('Profiler.stop', (err, res) => {
      if (err || !res) return;
      const name = path.basename(process.argv[1] ?? 'node').replace(/\.[cm]?[jt]s$/, '');
      const role = path.basename(path.dirname(process.argv[1] ?? ''));
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, `${role}-${name}-${process.pid}.cpuprofile`), JSON.stringify(res.profile));
    });
  });
}
