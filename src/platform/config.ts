import path from 'node:path';
import { ConfigError } from './errors.js';

export type Env = Readonly<Record<string, string | undefined>>;

export function str(env: Env, name: string, fallback: string): string {
  const v = env[name];
  return v === undefined || v === '' ? fallback : v;
}

export function int(env: Env, name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(name, `expected an integer, got "${raw}"`);
  const v = Number(raw);
  if (v < min || v > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${v}`);
  return v;
}

export function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const v = raw.toLowerCase() as T;
  if (!allowed.includes(v)) throw new ConfigError(name, `expected one of ${allowed.join('|')}, got "${raw}"`);
  return v;
}

export interface HostPort {
  host: string;
  port: number;
}

/** Parses `host:port`, `:port` (all interfaces) or `[::1]:port`. Port 0 asks the OS for a free port. */
export function parseAddr(name: string, value: string): HostPort {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value.trim());
  if (!m) throw new ConfigError(name, `expected host:port, got "${value}"`);
  const port = Number(m[3]);
  if (port > 65535) throw new ConfigError(name, `port out of range in "${value}"`);
  const host = m[1] ?? (m[2] === '' ? '0.0.0.0' : (m[2] as string));
  return { host, port };
}

export function formatAddr({ host, port }: HostPort): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export const DEFAULT_ADDRS = {
  HTTP_ADDR: ':8080',
  ORDER_SERVICE_ADDR: '127.0.0.1:9090',
  PAYMENT_SERVICE_ADDR: '127.0.0.1:9091',
  INVENTORY_SERVICE_ADDR: '127.0.0.1:9092',
} as const;

export type AddrVar = keyof typeof DEFAULT_ADDRS;

export function addr(env: Env, name: AddrVar): HostPort {
  return parseAddr(name, str(env, name, DEFAULT_ADDRS[name]));
}

export function dataDir(env: Env): string {
  return path.resolve(str(env, 'DATA_DIR', './data'));
}

export type SyncLevel = 'normal' | 'full';

export function syncLevel(env: Env, name: string): SyncLevel {
  return oneOf(env, name, ['normal', 'full'] as const, 'normal');
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration: `500ms`, `30s`, `15m`, `24h`, `1d`, or a bare number of seconds. */
export function duration(env: Env, name: string, fallbackMs: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallbackMs;
  const m = /^\s*(\d{1,9})\s*(ms|s|m|h|d)?\s*$/.exec(raw);
  if (!m) throw new ConfigError(name, `expected a duration like 30s, 15m or 24h, got "${raw}"`);
  const ms = Number(m[1]) * (UNIT_MS[m[2] ?? 's'] as number);
  if (ms <= 0) throw new ConfigError(name, 'must be positive');
  return ms;
}

/** Where the shared Redis is, and the prefix of this deployment's keys in it. */
export function redisSettings(env: Env): { url: string; keyPrefix: string } {
  const url = str(env, 'REDIS_URL', 'redis://127.0.0.1:6379');
  if (!/^rediss?:\/\//.test(url)) throw new ConfigError('REDIS_URL', `expected redis://host:port, got "${url}"`);
  const keyPrefix = str(env, 'REDIS_KEY_PREFIX', 'ecommerce-sagas');
  if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(keyPrefix)) throw new ConfigError('REDIS_KEY_PREFIX', 'expected 1-64 characters of [A-Za-z0-9_.:-]');
  return { url, keyPrefix };
}

/** Whether `url` names a PostgreSQL server (postgres:// or postgresql://). */
export function isPostgresUrl(url: string | undefined): url is string {
  return url !== undefined && /^postgres(ql)?:\/\/[^/]/i.test(url.trim());
}

/** Where the gateway's saga log lives: SQLite under DATA_DIR by default, PostgreSQL when SAGA_LOG_URL says so. */
export function sagaLogSettings(env: Env): SagaLogSettings {
  const url = str(env, 'SAGA_LOG_URL', '');
  if (url === '') {
    return { kind: 'sqlite', file: path.resolve(str(env, 'SAGA_LOG_DB_PATH', path.join(dataDir(env), 'saga.db'))), synchronous: syncLevel(env, 'SAGA_LOG_SYNC') };
  }
  if (!isPostgresUrl(url)) throw new ConfigError('SAGA_LOG_URL', 'expected postgres://user[:password]@host[:port]/database');
  try {
    new URL(url);
  } catch {
    throw new ConfigError('SAGA_LOG_URL', 'expected postgres://user[:password]@host[:port]/database (not a valid URL)');
  }
  return {
    kind: 'postgres',
    url,
    poolSize: int(env, 'SAGA_LOG_POOL_SIZE', 10, 1, 200),
    synchronousCommit: oneOf(env, 'SAGA_LOG_PG_SYNCHRONOUS_COMMIT', ['on', 'off', 'local', 'remote_write', 'remote_apply'] as const, 'on'),
  };
}

export type SagaLogSettings =
  | { kind: 'sqlite'; file: string; synchronous: SyncLevel }
  | { kind: 'postgres'; url: string; poolSize: number; synchronousCommit: 'on' | 'off' | 'local' | 'remote_write' | 'remote_apply' };

/** A URL without its password, for logs and messages (an unparsable one is masked by pattern). */
export function redactPassword(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
  }
}
