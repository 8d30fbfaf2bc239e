import path from 'node:path';
import { createRequire } from 'node:module';
import type envSchemaFn from 'env-schema';
import { ConfigError, type InvalidVariable } from '../errors.js';

/**
 * The schema layer every process's configuration is written in.
 *
 * A variable is a JSON Schema of its raw form (an integer with bounds, one of some words, a
 * string of a custom format) plus what the layer needs around it: the expected form in words, its
 * default (fixed, or computed from other variables), how to redact it, and how to turn the raw
 * value into the typed one (a duration into milliseconds, `host:port` into a HostPort).
 * env-schema (ajv, allErrors) validates every variable of a process at once, so a bad
 * configuration is reported whole; the custom forms are ajv formats registered here.
 */

export type Env = Readonly<Record<string, string | undefined>>;

/**
 * The JSON Schema a variable's raw value is validated with. Written as plain objects, not with
 * TypeBox: these are five small shapes, and importing typebox costs every process ~250 ms at
 * start (ajv, through env-schema, ~100 ms, and only when a configuration is read).
 */
export interface JsonSchema {
  type: 'string' | 'integer';
  minimum?: number;
  maximum?: number;
  enum?: string[];
  pattern?: string;
  format?: string;
  default?: string | number;
}

export interface HostPort {
  host: string;
  port: number;
}

/** Raw values after validation: what env-schema hands back (integers already numbers). */
type Raw = string | number | undefined;

export interface Variable<T> {
  /** The raw value's form; validated by env-schema with every other variable of the process. */
  readonly schema: JsonSchema;
  /** The form in words, for messages and `sagas config`: `host:port`, `an integer >= 500`. */
  readonly expected: string;
  /**
   * The value when the variable is unset or empty: fixed, or computed from the typed values of
   * the variables without a computed default (SAGA_LOG_DB_PATH from DATA_DIR).
   */
  readonly default?: string | number | ((values: Readonly<Record<string, unknown>>) => string | number);
  /** How to show the value without its secret part; set only on secrets. */
  readonly redact?: (value: string) => string;
  /** Case does not matter (words like `info`): the value is lowercased before validation. */
  readonly lowercase?: boolean;
  /** What the value must look like before ajv's coercion sees it (ajv would take `0x10` as 16). */
  readonly form?: RegExp;
  /** The typed value of a valid raw one (unset only when there is no default). */
  convert(raw: Raw): T;
}

export type Variables = Readonly<Record<string, Variable<unknown>>>;
export type Values<V extends Variables> = { readonly [K in keyof V]: V[K] extends Variable<infer T> ? T : never };

// ---------------------------------------------------------------------------------------------
// Forms

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(\d{1,9})(ms|s|m|h|d)?$/;
const HOST_PORT = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/;
const KEY_VALUES = /^[^=,\s][^=,]*=[^,]*(,\s*[^=,\s][^=,]*=[^,]*)*$/;

/** Milliseconds of `500ms`, `30s`, `15m`, `24h`, `1d`, or a bare number of seconds; undefined if not one. */
export function durationMs(value: string): number | undefined {
  const m = DURATION.exec(value.trim());
  if (!m) return undefined;
  const ms = Number(m[1]) * (UNIT_MS[m[2] ?? 's'] as number);
  return ms > 0 ? ms : undefined;
}

/** `host:port`, `:port` (all interfaces) or `[::1]:port`; port 0 asks the OS for a free one. Undefined if not one. */
export function hostPortOf(value: string): HostPort | undefined {
  const m = HOST_PORT.exec(value.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  return { host: m[1] ?? (m[2] === '' ? '0.0.0.0' : (m[2] as string)), port };
}

/** More addresses than this for one participant is surely a mistake (each is a session kept open). */
export const MAX_ADDRESSES = 64;

/**
 * `host:port,host:port,…` (a participant's replicas; spaces around the commas allowed): each
 * entry as hostPortOf reads it, none twice, at most MAX_ADDRESSES. One address is a list of one.
 * Undefined if not one.
 */
export function hostPortListOf(value: string): HostPort[] | undefined {
  const parts = value.split(',').map((s) => s.trim());
  if (parts.length > MAX_ADDRESSES) return undefined;
  const out: HostPort[] = [];
  const seen = new Set<string>();
  for (const part of parts) {
    const where = hostPortOf(part);
    if (!where) return undefined;
    const key = `${where.host.toLowerCase()} ${where.port}`;
    if (seen.has(key)) return undefined;
    seen.add(key);
    out.push(where);
  }
  return out;
}

/** Whether `url` names a PostgreSQL server (postgres:// or postgresql://). */
export function isPostgresUrl(url: string | undefined): url is string {
  return url !== undefined && /^postgres(ql)?:\/\/[^/]/i.test(url.trim());
}

function parsesAsUrl(value: string): boolean {
  try {
    new URL(value);
    return true;
  } catch {
    return false;
  }
}

/** `k=v,k2=v2` as the OTel variables write lists (values percent-encoded). */
export function keyValuesOf(value: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of value.split(',')) {
    const at = pair.indexOf('=');
    if (at <= 0) continue;
    const raw = pair.slice(at + 1).trim();
    let decoded = raw;
    try {
      decoded = decodeURIComponent(raw);
    } catch {
      // A stray '%' is kept as written, as the OTel SDK does.
    }
    out[pair.slice(0, at).trim()] = decoded;
  }
  return out;
}

/** The custom string formats, as ajv formats (registered on env-schema's ajv instance). */
const FORMATS: Record<string, (value: string) => boolean> = {
  'host-port': (v) => hostPortOf(v) !== undefined,
  'host-port-or-off': (v) => v === 'off' || hostPortOf(v) !== undefined,
  'host-port-list': (v) => hostPortListOf(v) !== undefined,
  duration: (v) => durationMs(v) !== undefined,
  'postgres-url': (v) => isPostgresUrl(v) && parsesAsUrl(v),
  'redis-url': (v) => /^rediss?:\/\/./.test(v) && parsesAsUrl(v),
  'http-url': (v) => /^https?:\/\/./.test(v) && parsesAsUrl(v),
  'key-values': (v) => KEY_VALUES.test(v),
};

// ---------------------------------------------------------------------------------------------
// Variable kinds

/** Every variable constructor takes these; `expected` overrides the generated wording. */
interface Common {
  expected?: string;
  redact?: (value: string) => string;
}

function bounds(min: number | undefined, max: number | undefined): string {
  if (min !== undefined && max !== undefined) return `an integer from ${min} to ${max}`;
  if (min !== undefined) return `an integer >= ${min}`;
  if (max !== undefined) return `an integer <= ${max}`;
  return 'an integer';
}

export function integer(
  o: Common & { min?: number; max?: number; default: number | ((v: Readonly<Record<string, unknown>>) => number) },
): Variable<number> {
  return {
    schema: {
      type: 'integer',
      ...(o.min === undefined ? {} : { minimum: o.min }),
      ...(o.max === undefined ? {} : { maximum: o.max }),
      ...(typeof o.default === 'number' ? { default: o.default } : {}),
    },
    expected: o.expected ?? bounds(o.min, o.max),
    default: o.default,
    form: /^-?\d+$/,
    convert: (raw) => Number(raw),
  };
}

export function duration(o: Common & { default: string }): Variable<number> {
  return {
    schema: { type: 'string', format: 'duration', default: o.default },
    expected: o.expected ?? 'a duration like 500ms, 30s, 15m or 24h (bare numbers are seconds)',
    default: o.default,
    convert: (raw) => durationMs(String(raw)) as number,
  };
}

export function hostPort(o: Common & { default: string }): Variable<HostPort> {
  return {
    schema: { type: 'string', format: 'host-port', default: o.default },
    expected: o.expected ?? 'host:port (or :port, [::1]:port)',
    default: o.default,
    convert: (raw) => hostPortOf(String(raw)) as HostPort,
  };
}

/** One address or several, `host:port,host:port` (where the gateway dials a participant's replicas). */
export function hostPortList(o: Common & { default: string }): Variable<HostPort[]> {
  return {
    schema: { type: 'string', format: 'host-port-list', default: o.default },
    expected:
      o.expected ??
      `host:port, or several separated by commas (host:port,host:port; each once, at most ${MAX_ADDRESSES})`,
    default: o.default,
    convert: (raw) => hostPortListOf(String(raw)) as HostPort[],
  };
}

/** `host:port`, or `off` to disable what listens there. */
export function hostPortOrOff(o: Common & { default: string }): Variable<HostPort | 'off'> {
  return {
    schema: { type: 'string', format: 'host-port-or-off', default: o.default },
    expected: o.expected ?? 'host:port or off',
    default: o.default,
    lowercase: true,
    convert: (raw) => (raw === 'off' ? 'off' : (hostPortOf(String(raw)) as HostPort)),
  };
}

export function oneOf<const T extends string>(
  words: readonly T[],
  o: Common & { default: T | ((v: Readonly<Record<string, unknown>>) => T) },
): Variable<T> {
  return {
    schema: { type: 'string', enum: [...words], ...(typeof o.default === 'string' ? { default: o.default } : {}) },
    expected: o.expected ?? `one of ${words.join(', ')}`,
    default: o.default,
    lowercase: true,
    convert: (raw) => raw as T,
  };
}

export function flag(o: Common & { default: boolean }): Variable<boolean> {
  return {
    schema: { type: 'string', enum: ['true', 'false'], default: String(o.default) },
    expected: o.expected ?? 'true or false',
    default: String(o.default),
    lowercase: true,
    convert: (raw) => raw === 'true',
  };
}

/** A string with a given pattern (or any non-empty one); optional when it has no default. */
export function text(
  o: Common & {
    default: string | ((v: Readonly<Record<string, unknown>>) => string);
    pattern?: string;
    format?: string;
  },
): Variable<string>;
export function text(o: Common & { pattern?: string; format?: string }): Variable<string | undefined>;
export function text(
  o: Common & {
    default?: string | ((v: Readonly<Record<string, unknown>>) => string);
    pattern?: string;
    format?: string;
  },
): Variable<string | undefined> {
  return {
    schema: {
      type: 'string',
      ...(o.pattern === undefined ? {} : { pattern: o.pattern }),
      ...(o.format === undefined ? {} : { format: o.format }),
      ...(typeof o.default === 'string' ? { default: o.default } : {}),
    },
    expected: o.expected ?? (o.pattern ? `a string matching ${o.pattern}` : 'a string'),
    ...(o.default === undefined ? {} : { default: o.default }),
    ...(o.redact ? { redact: o.redact } : {}),
    convert: (raw) => (raw === undefined ? undefined : String(raw)),
  };
}

/** A path, made absolute against the working directory as the process sees it. */
export function filePath(
  o: Common & { default: string | ((v: Readonly<Record<string, unknown>>) => string) },
): Variable<string>;
export function filePath(o: Common): Variable<string | undefined>;
export function filePath(
  o: Common & { default?: string | ((v: Readonly<Record<string, unknown>>) => string) },
): Variable<string | undefined> {
  return {
    schema: { type: 'string', ...(typeof o.default === 'string' ? { default: o.default } : {}) },
    expected: o.expected ?? 'a path',
    ...(o.default === undefined ? {} : { default: o.default }),
    convert: (raw) => (raw === undefined ? undefined : path.resolve(String(raw))),
  };
}

/** `k=v,k2=v2` (OTel headers and resource attributes), values percent-decoded; empty when unset. */
export function keyValues(o: Common): Variable<Record<string, string>> {
  return {
    schema: { type: 'string', format: 'key-values' },
    expected: o.expected ?? 'key=value pairs separated by commas',
    ...(o.redact ? { redact: o.redact } : {}),
    convert: (raw) => (raw === undefined ? {} : keyValuesOf(String(raw))),
  };
}

/** Words separated by commas; empty when unset. */
export function list(o: Common): Variable<string[]> {
  return {
    schema: { type: 'string' },
    expected: o.expected ?? 'words separated by commas',
    convert: (raw) =>
      raw === undefined
        ? []
        : String(raw)
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean),
  };
}

// ---------------------------------------------------------------------------------------------
// Redaction

/**
 * Query parameters that carry a credential: ioredis, for one, takes `?password=` (and
 * `?sentinelPassword=`) as options. Broad on purpose: masking a harmless parameter costs nothing.
 */
const SECRET_PARAM = /pass|pwd|secret|token|auth|credential|api[-_]?key/i;

/**
 * A URL without its secrets, for logs and messages: the password of its user info (any
 * characters, `@` and `:` included, percent-encoded or not) and the value of every query
 * parameter that names a credential. The user name stays (it identifies, it does not grant).
 * An unparsable URL is masked by pattern, erring towards masking too much: everything between
 * `//` and the last `@`, and the same query parameters.
 */
export function redactPassword(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    for (const key of [...u.searchParams.keys()]) if (SECRET_PARAM.test(key)) u.searchParams.set(key, '***');
    // URLSearchParams writes `***` as `%2A%2A%2A`: shown as typed, it reads as masked.
    return u.toString().replace(/%2A%2A%2A/g, '***');
  } catch {
    const at = url.lastIndexOf('@');
    const slashes = url.indexOf('//');
    const start = slashes === -1 ? 0 : slashes + 2; // no `//`: the whole head is masked
    const masked = at >= start ? `${url.slice(0, start)}***${url.slice(at)}` : url;
    return masked.replace(/([?&;]([^=&;#]*)=)([^&;#]*)/g, (all, head: string, key: string) =>
      SECRET_PARAM.test(key) ? `${head}***` : all,
    );
  }
}

/**
 * `k=v,k2=v2` with every value masked: header values are credentials (API keys, tokens). A part
 * without `=` (a value that had a comma in it, or a stray word) is masked whole.
 */
export function redactValues(value: string): string {
  return value
    .split(',')
    .map((pair) => {
      const at = pair.indexOf('=');
      if (at > 0) return `${pair.slice(0, at)}=***`;
      return pair.trim() === '' ? pair : '***';
    })
    .join(',');
}

// ---------------------------------------------------------------------------------------------
// Reading

export type Source = 'env' | 'default';

export interface Setting {
  variable: string;
  /** The effective value as it would be written in the environment, secrets redacted; undefined when unset without default. */
  value: string | undefined;
  source: Source;
  expected: string;
  secret: boolean;
}

export interface Resolution<V extends Variables> {
  settings: Setting[];
  /** Every invalid variable; empty when the configuration is valid. */
  invalid: InvalidVariable[];
  /** The typed values; present only when `invalid` is empty. */
  values?: Values<V>;
}

let loaded: typeof envSchemaFn | undefined;

/**
 * env-schema, loaded on the first configuration read rather than at import: modules that only
 * want an address parser or redactPassword from config.ts (the CLI, test fixtures that must
 * start fast) do not pay for ajv.
 */
function envSchema(): typeof envSchemaFn {
  loaded ??= createRequire(import.meta.url)('env-schema') as typeof envSchemaFn;
  return loaded;
}

function present(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v === undefined || v === '' ? undefined : v;
}

function shown(variable: Variable<unknown>, value: string): string {
  return variable.redact ? variable.redact(value) : value;
}

/** The variables' values in `env`, validated all at once; never throws for a bad value. */
export function resolveVariables<V extends Variables>(variables: V, env: Env): Resolution<V> {
  const names = Object.keys(variables);
  const invalid = new Map<string, InvalidVariable>();
  const data: Record<string, string> = {};
  for (const name of names) {
    const variable = variables[name] as Variable<unknown>;
    const raw = present(env, name);
    if (raw === undefined) continue;
    const value = variable.lowercase ? raw.toLowerCase() : raw;
    if (variable.form && !variable.form.test(value)) {
      invalid.set(name, { variable: name, expected: variable.expected, got: shown(variable, raw) });
    } else {
      data[name] = value;
    }
  }

  const properties: Record<string, JsonSchema> = {};
  for (const name of names) properties[name] = (variables[name] as Variable<unknown>).schema;
  let validated: Record<string, Raw> = {};
  try {
    validated = envSchema()<Record<string, Raw>>({
      // Every variable may be unset (its default applies, or it stays unset): none is required.
      // env-schema sets additionalProperties on the object it is given: it is a fresh one.
      schema: { type: 'object', properties, additionalProperties: false },
      data,
      env: false,
      ajv: {
        customOptions(ajv) {
          for (const [format, validate] of Object.entries(FORMATS)) ajv.addFormat(format, { type: 'string', validate });
          return ajv;
        },
      },
    });
  } catch (err) {
    // env-schema puts ajv's errors (all of them: allErrors) on the Error it throws.
    const errors = (err as { errors?: { instancePath: string }[] }).errors;
    if (!errors) throw err;
    for (const e of errors) {
      const name = decodeURIComponent(e.instancePath.split('/')[1] ?? '');
      const variable = variables[name];
      if (!variable || invalid.has(name)) continue;
      invalid.set(name, {
        variable: name,
        expected: variable.expected,
        got: shown(variable, present(env, name) ?? ''),
      });
    }
    if (invalid.size === 0) throw err;
  }

  const list = names.filter((n) => invalid.has(n)).map((n) => invalid.get(n) as InvalidVariable);
  const settings: Setting[] = [];
  const values: Record<string, unknown> = {};
  const computed: string[] = [];
  for (const name of names) {
    const variable = variables[name] as Variable<unknown>;
    if (typeof variable.default === 'function' && present(env, name) === undefined) {
      computed.push(name);
      continue;
    }
    const raw = invalid.has(name)
      ? undefined
      : (validated[name] ?? (typeof variable.default === 'function' ? undefined : variable.default));
    if (!invalid.has(name)) values[name] = variable.convert(raw);
    settings.push(setting(name, variable, env, invalid.has(name) ? present(env, name) : raw));
  }
  // Computed defaults read other variables' typed values: only when those are valid.
  for (const name of computed) {
    const variable = variables[name] as Variable<unknown>;
    const raw =
      list.length === 0
        ? (variable.default as (v: Readonly<Record<string, unknown>>) => string | number)(values)
        : undefined;
    if (raw !== undefined) values[name] = variable.convert(raw);
    settings.push(setting(name, variable, env, raw));
  }
  settings.sort((a, b) => names.indexOf(a.variable) - names.indexOf(b.variable));
  return list.length === 0 ? { settings, invalid: list, values: values as Values<V> } : { settings, invalid: list };
}

function setting(name: string, variable: Variable<unknown>, env: Env, raw: Raw): Setting {
  return {
    variable: name,
    value: raw === undefined ? undefined : shown(variable, String(raw)),
    source: present(env, name) === undefined ? 'default' : 'env',
    expected: variable.expected,
    secret: variable.redact !== undefined,
  };
}

/** The typed values of `variables` in `env`; a ConfigError naming every invalid variable otherwise. */
export function readVariables<V extends Variables>(variables: V, env: Env): Values<V> {
  const r = resolveVariables(variables, env);
  if (!r.values) throw new ConfigError(r.invalid);
  return r.values;
}
