import { Redis } from 'ioredis';
import type { Meter } from '@opentelemetry/api';
import type { Logger } from '../telemetry/logger.js';
import { redactPassword } from '../config/config-schema.js';

/** 1 while the in-process fallback serves instead of Redis. */
export function observeFallback(meter: Meter, kv: FastKv): void {
  meter
    .createObservableGauge('idempotency_fallback_active', {
      description: '1 while idempotency falls back to process memory because Redis is unreachable',
    })
    .addCallback((r) => r.observe(kv.mode() === 'memory' ? 1 : 0));
}

/**
 * A small key-value store with expiry: the idempotency fast path and cross-replica lock. Redis
 * when it answers, an in-process map when it does not. Nothing may depend on it for correctness:
 * the durable stores are the truth.
 */
export interface FastKv {
  /** SET NX PX: stores `value` if `key` is free and returns null, or returns the current value. */
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<string | null>;
  set(key: string, value: string, ttlMs: number): Promise<void>;
  get(key: string): Promise<string | null>;
  /** PTTL: the ms `key` has left, `null` when it never expires, `undefined` when it is absent. */
  ttlMs(key: string): Promise<number | null | undefined>;
  del(key: string): Promise<void>;
  /** 'redis' while Redis answers, 'memory' while the fallback serves. */
  mode(): 'redis' | 'memory';
  close(): Promise<void>;
}

/** The fallback: a Map with per-entry expiry, bounded in size. */
export class MemoryKv implements FastKv {
  private readonly entries = new Map<string, { value: string; expiresAt: number }>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly maxEntries = 100_000,
    private readonly now: () => number = Date.now,
  ) {
    this.sweeper = setInterval(() => this.sweep(), 10_000);
    this.sweeper.unref();
  }

  private live(key: string): string | null {
    const e = this.entries.get(key);
    if (!e) return null;
    if (e.expiresAt <= this.now()) {
      this.entries.delete(key);
      return null;
    }
    return e.value;
  }

  private put(key: string, value: string, ttlMs: number): void {
    this.entries.delete(key); // re-insert so that Map order is insertion age
    this.entries.set(key, { value, expiresAt: this.now() + ttlMs });
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
  }

  private sweep(): void {
    const now = this.now();
    for (const [k, e] of this.entries) if (e.expiresAt <= now) this.entries.delete(k);
  }

  async setIfAbsent(key: string, value: string, ttlMs: number): Promise<string | null> {
    const current = this.live(key);
    if (current !== null) return current;
    this.put(key, value, ttlMs);
    return null;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    this.put(key, value, ttlMs);
  }

  async get(key: string): Promise<string | null> {
    return this.live(key);
  }

  async ttlMs(key: string): Promise<number | null | undefined> {
    const e = this.live(key) === null ? undefined : this.entries.get(key);
    return e && e.expiresAt - this.now();
  }

  async del(key: string): Promise<void> {
    this.entries.delete(key);
  }

  mode(): 'redis' | 'memory' {
    return 'memory';
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
  }
}

export interface ResilientKvOptions {
  url: string;
  logger: Logger;
  /** A Redis command slower than this counts as Redis being down for that call. */
  commandTimeoutMs?: number;
  /** While serving from memory over a connection that stayed up, how often Redis is asked again (default 1 s). */
  recheckMs?: number;
  onModeChange?: (mode: 'redis' | 'memory') => void;
}

/**
 * Redis in front, the in-process map behind. Commands fail fast (no offline queue, a short
 * timeout) so a dead Redis costs no latency; the switch each way is logged once.
 */
export class ResilientKv implements FastKv {
  private readonly redis: Redis;
  private readonly memory = new MemoryKv();
  private current: 'redis' | 'memory' = 'memory';
  private readonly logger: Logger;

  constructor(private readonly opts: ResilientKvOptions) {
    this.logger = opts.logger;
    this.redis = new Redis(opts.url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: opts.commandTimeoutMs ?? 250,
      connectTimeout: 1_000,
      // Keep trying to reconnect, at most once a second.
      retryStrategy: (times) => Math.min(times * 100, 1_000),
      lazyConnect: false,
    });
    this.redis.on('ready', () => this.switchTo('redis'));
    this.redis.on('error', (err: Error) => this.switchTo('memory', err));
    this.redis.on('end', () => this.switchTo('memory'));
    this.redis.on('close', () => this.switchTo('memory'));
    // Until Redis says it is ready we serve from memory; say so once if it never comes.
    setTimeout(() => {
      if (this.current === 'memory' && this.redis.status !== 'ready') this.announce('memory');
    }, 1_500).unref();
  }

  private announced: 'redis' | 'memory' | undefined;

  private announce(mode: 'redis' | 'memory', err?: Error): void {
    if (this.announced === mode) return;
    this.announced = mode;
    if (mode === 'memory') {
      this.logger.warn(
        { redis_url: redact(this.opts.url), error: err?.message },
        'redis unreachable: idempotency fast path falls back to process memory',
      );
    } else {
      this.logger.info({ redis_url: redact(this.opts.url) }, 'redis reachable: idempotency fast path uses redis');
    }
  }

  private switchTo(mode: 'redis' | 'memory', err?: Error): void {
    if (this.current === mode) return;
    this.current = mode;
    this.announce(mode, err);
    this.opts.onModeChange?.(mode);
    if (mode === 'memory') this.watchForRedis();
  }

  private recheck: NodeJS.Timeout | undefined;

  /**
   * A connection that drops comes back through 'ready'; one that stays up while a command timed
   * out (a loaded Redis, or a loaded machine) says nothing. Without asking again the fast path
   * stayed in memory for the life of the process, each gateway with its own in-flight keys and up
   * to 100,000 answers held in its heap (seen in a bench run: 60 MiB).
   */
  private watchForRedis(): void {
    if (this.recheck) return;
    this.recheck = setInterval(() => {
      if (this.current === 'redis') {
        clearInterval(this.recheck);
        this.recheck = undefined;
      } else if (this.redis.status === 'ready') {
        this.redis.ping().then(
          () => this.switchTo('redis'),
          () => undefined,
        );
      }
    }, this.opts.recheckMs ?? 1_000);
    this.recheck.unref();
  }

  private async use<T>(viaRedis: (r: Redis) => Promise<T>, viaMemory: (m: MemoryKv) => Promise<T>): Promise<T> {
    if (this.current === 'redis' && this.redis.status === 'ready') {
      try {
        return await viaRedis(this.redis);
      } catch (err) {
        this.switchTo('memory', err instanceof Error ? err : new Error(String(err)));
      }
    }
    return viaMemory(this.memory);
  }

  async setIfAbsent(key: string, value: string, ttlMs: number): Promise<string | null> {
    return this.use(
      async (r) => {
        // SET NX GET: one round trip answers both "did I take it" and "what holds it".
        const prev = (await r.call('SET', key, value, 'PX', String(ttlMs), 'NX', 'GET')) as string | null;
        return prev;
      },
      (m) => m.setIfAbsent(key, value, ttlMs),
    );
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    await this.use(
      async (r) => {
        await r.set(key, value, 'PX', ttlMs);
      },
      (m) => m.set(key, value, ttlMs),
    );
  }

  async get(key: string): Promise<string | null> {
    return this.use(
      (r) => r.get(key),
      (m) => m.get(key),
    );
  }

  async ttlMs(key: string): Promise<number | null | undefined> {
    return this.use(
      async (r) => {
        const ms = await r.pttl(key);
        return ms === -2 ? undefined : ms === -1 ? null : ms;
      },
      (m) => m.ttlMs(key),
    );
  }

  async del(key: string): Promise<void> {
    await this.use(
      async (r) => {
        await r.del(key);
      },
      (m) => m.del(key),
    );
  }

  mode(): 'redis' | 'memory' {
    return this.current;
  }

  async close(): Promise<void> {
    clearInterval(this.recheck);
    await this.memory.close();
    this.redis.disconnect();
  }
}

// The configuration's redaction: a password with `@` in it, or given as `?password=`, is masked too.
function redact(url: string): string {
  return redactPassword(url);
}
