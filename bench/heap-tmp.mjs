import fs from 'node:fs';
import path from 'node:path';
import { Session } from 'node:inspector';
const dir = process.env.BENCH_CPU_PROF_DIR;
if (dir && (process.argv[1] ?? '').includes('gateway')) {
  const session = new Session();
  session.connect();
  session.post('HeapProfiler.enable');
  // include objects collected by minor/major GC: we want allocation volume, not retention
  session.post('HeapProfiler.startSampling', { samplingInterval: 16384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  process.once('exit', () => {
    session.post('HeapProfiler.stopSampling', (err, res) => {
      if (err || !res) return;
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, `gateway-${process.pid}.heapprofile`), JSON.stringify(res.profile));
    });
  });
}
