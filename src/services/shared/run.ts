import { ConfigError } from '../../platform/errors.js';

/**
 * Runs a service's `main`, turning a startup failure into a clear message and exit code 1.
 * A configuration mistake is the operator's to fix, so it gets one plain line, not a stack trace.
 */
export function runMain(service: string, main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`${service}: invalid configuration: ${err.message}\n`);
    } else {
      process.stderr.write(`${service}: failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    }
    process.exit(1);
  });
}
