import { Writable } from 'node:stream';
import { main } from '../../src/cli/main.js';

/** A stream that keeps what is written to it, as text. */
function sink(): Writable & { text: string } {
  const s = Object.assign(
    new Writable({
      write(chunk, _enc, cb) {
        s.text += String(chunk);
        cb();
      },
    }),
    { text: '' },
  );
  return s;
}

/** The `sagas` command's `main` in this process, with its output captured (no colours unless `env` asks). */
export async function sagasInProcess(
  argv: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = sink();
  const stderr = sink();
  const code = await main(argv, { env: { NO_COLOR: '1', ...env }, stdout, stderr });
  return { code, stdout: stdout.text, stderr: stderr.text };
}
