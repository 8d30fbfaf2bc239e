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
