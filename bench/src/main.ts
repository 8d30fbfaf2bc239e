/**
 * The bench's entry: `npm run bench -- [options]` (node --import tsx bench/src/main.ts). Parses
 * the command line (--help prints the usage; a bad option exits 2), then runs the bench.
 */
import { BENCH_USAGE, UsageError, parseBenchArgs, type BenchOptions } from './args.js';
import { runBench, type BenchDeps } from './run.js';

/** Resolves with the exit code: 0, 1 on a failed run, 2 on a bad command line, 130 interrupted. */
async function main(argv: readonly string[], deps: BenchDeps = {}): Promise<number> {
  const stdout = deps.stdout ?? process.stdout;
  const stderr = deps.stderr ?? process.stderr;
  let opts: BenchOptions | 'help';
  try {
    opts = parseBenchArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    stderr.write(`bench: ${err.message}\n\n${BENCH_USAGE}`);
    return 2;
  }
  if (opts === 'help') {
    stdout.write(BENCH_USAGE);
    return 0;
  }
  return runBench(opts, argv, deps);
}

// Exit explicitly: a gRPC channel or a keep-alive socket left behind must not keep the bench alive.
process.exit(await main(process.argv.slice(2)));
