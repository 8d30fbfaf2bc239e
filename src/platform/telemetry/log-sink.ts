import { writeSync } from 'node:fs';

/** The part of process.stdout the sink uses (a test passes its own). */
export interface SinkTarget {
  write(chunk: string): boolean;
  readonly writableLength: number;
  once(event: 'drain', listener: () => void): unknown;
  off(event: 'drain', listener: () => void): unknown;
  readonly fd?: number;
}

export interface LogSinkOptions {
  /** Bytes queued towards a reader that does not keep up, beyond which lines are dropped (and counted). */
  maxQueuedBytes?: number;
  /** How long `flush` waits at most for the reader to take what is queued. */
  flushTimeoutMs?: number;
}

/**
 * pino's destination for the services' log lines: the lines of one event-loop turn leave in one
 * write, and a write never blocks the event loop.
 *
 * Why not `pino.destination({ sync: true })` (this project's first choice): every line was a
 * write(2) of its own, and once stdout (a pipe) was full, sonic-boom slept 100 ms in
 * `atomic-sleep` with the whole process stopped — the bench's profile of the gateway at
 * saturation was 19 % sleep and the participants spent 13 % of their time writing lines. Why
 * not its asynchronous mode: at exit it retries a write that fails with EPIPE for ever (a
 * supervisor killed with -9), so the process never stops.
 *
 * Here a line is appended to a buffer and the buffer is handed to process.stdout on the next
 * turn (setImmediate). process.stdout, a libuv stream, writes what the pipe takes and queues the
 * rest until the pipe is writable again; an EPIPE is an 'error' event that logger.ts's
 * ignoreBrokenPipes drops, and the sink stops writing. If the reader stops reading, the queue is
 * capped (`maxQueuedBytes`): lines beyond it are dropped and one line says how many, once the
 * reader is back. A kill -9 loses the lines of the last turn, which is the price of not waiting
 * for the reader; the saga log, not the log lines, is the durable record.
 */
export class LogSink {
  private pending: string[] = [];
  private scheduled = false;
  private broken = false;
  private dropped = 0;
  private readonly maxQueuedBytes: number;
  private readonly flushTimeoutMs: number;

  constructor(
    private readonly target: SinkTarget,
    opts: LogSinkOptions = {},
  ) {
    this.maxQueuedBytes = opts.maxQueuedBytes ?? 16 * 1024 * 1024;
    this.flushTimeoutMs = opts.flushTimeoutMs ?? 1_000;
  }

  /** pino's DestinationStream.write: one serialised line, newline included. */
  write(line: string): void {
    if (this.broken) return;
    this.pending.push(line);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.handOver);
    }
  }

  /** The target is gone for good (EPIPE): drop every line from now on. */
  markBroken(): void {
    this.broken = true;
    this.pending = [];
  }

  /** Lines dropped since the last report because the reader did not keep up. */
  get droppedLines(): number {
    return this.dropped;
  }

  private readonly handOver = (): void => {
    this.scheduled = false;
    if (this.broken || this.pending.length === 0) return;
    const lines = this.pending;
    this.pending = [];
    if (this.target.writableLength > this.maxQueuedBytes) {
      this.dropped += lines.length;
      return;
    }
    let chunk = lines.join('');
    if (this.dropped > 0) {
      chunk = `${JSON.stringify({ level: 'warn', time: new Date().toISOString(), msg: `${this.dropped} log lines dropped: stdout was not read fast enough` })}\n${chunk}`;
      this.dropped = 0;
    }
    this.target.write(chunk);
  };

  /**
   * Hands the pending lines over and calls `cb` once the reader has taken them all, or after
   * `flushTimeoutMs` (a reader that has stopped must not hold up a shutdown).
   */
  flush(cb: (err?: Error) => void = () => {}): void {
    this.handOver();
    if (this.broken || this.target.writableLength === 0) {
      cb();
      return;
    }
    const done = () => {
      clearTimeout(timer);
      this.target.off('drain', done);
      cb();
    };
    const timer = setTimeout(done, this.flushTimeoutMs);
    timer.unref();
    this.target.once('drain', done);
  }

  /**
   * At exit: writes the lines not yet handed over straight to the file descriptor, once, and
   * ignores any failure (a full or broken pipe). What process.stdout still queues is lost, and
   * so are these lines if it queues anything (they would land before it).
   */
  flushSync(): void {
    // With bytes still queued in process.stdout, a direct write would land before them.
    if (this.broken || this.pending.length === 0 || this.target.fd === undefined || this.target.writableLength > 0)
      return;
    const chunk = this.pending.join('');
    this.pending = [];
    try {
      writeSync(this.target.fd, chunk);
    } catch {
      // Nothing can be done with a log line that cannot be written at exit.
    }
  }
}
