import { spawn, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { freePort } from './system.js';

/** A private redis-server, killable and restartable on the same port; nothing on disk. */
export class TestRedis {
  private proc: ChildProcess | undefined;
  private constructor(readonly port: number) {}

  static async start(): Promise<TestRedis> {
    const r = new TestRedis(await freePort());
    await r.restart();
    return r;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async restart(): Promise<void> {
    const proc = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    this.proc = proc;
    const failed = new Promise<never>((_, reject) =>
      proc.once('exit', (code) => reject(new Error(`redis-server exited with ${code}; is it installed?`))),
    );
    const client = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => 50 });
    client.on('error', () => {}); // refused connections are expected until it listens
    try {
      const until = Date.now() + 10_000;
      for (;;) {
        try {
          await Promise.race([client.connect().then(() => client.ping()), failed]);
          return;
        } catch (err) {
          if (Date.now() > until) throw err;
          client.disconnect();
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    } finally {
      client.disconnect();
    }
  }

  /** SIGKILL, as a crash or an OOM kill would; resolves once it is gone. */
  async kill(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await gone;
  }

  client(): Redis {
    const c = new Redis(this.url, { maxRetriesPerRequest: 1 });
    c.on('error', () => {}); // the commands report their own failures
    return c;
  }
}
