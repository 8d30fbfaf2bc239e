/**
 * Pretty printing of the processes' pino JSON lines for a terminal:
 *
 *   [order    ] 12:03:04.567 INFO  order created order_id=ord_1 saga_id=sg_1
 *
 * Pure functions: whether to color is decided once by the caller (see `useColor`).
 */

export interface FormatOptions {
  /** ANSI colors. */
  color: boolean;
  /** Pass JSON lines through unchanged (only the prefix is added). */
  json?: boolean;
  /** Width of the name inside the tag. Default: the longest service name. */
  tagWidth?: number;
}

const ESC = '\u001b[';
const RESET = `${ESC}0m`;
const paint = (codes: string, s: string, on: boolean) => (on ? `${ESC}${codes}m${s}${RESET}` : s);

/** Longest of order, inventory, payment, gateway, sagas (and gateway-1 … gateway-9). */
export const DEFAULT_TAG_WIDTH = 9;

/** The tag width that fits every name (never less than the default, so one system's tags line up). */
export function tagWidthFor(names: readonly string[]): number {
  return Math.max(DEFAULT_TAG_WIDTH, ...names.map((n) => n.length));
}

const TAG_COLORS: Record<string, string> = {
  order: '36', // cyan
  inventory: '35', // magenta
  payment: '33', // yellow
  gateway: '32', // green
  sagas: '1;34', // bold blue: the supervisor itself
};
const FALLBACK_TAG_COLORS = ['94', '95', '96', '93', '92', '91'];

function tagColor(name: string): string {
  // gateway-1, gateway-2…: the colour of what they are
  const known = TAG_COLORS[name] ?? TAG_COLORS[name.replace(/-\d+$/, '')];
  if (known) return known;
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return FALLBACK_TAG_COLORS[h % FALLBACK_TAG_COLORS.length] as string;
}

/** `[order    ] ` — fixed width, colored per name. */
export function formatTag(name: string, opts: Pick<FormatOptions, 'color' | 'tagWidth'>): string {
  return `${paint(tagColor(name), `[${name.padEnd(opts.tagWidth ?? DEFAULT_TAG_WIDTH)}]`, opts.color)} `;
}

const NUMERIC_LEVELS: Record<number, string> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
};
const LEVEL_COLORS: Record<string, string> = {
  trace: '90',
  debug: '34',
  info: '32',
  warn: '33',
  error: '31',
  fatal: '1;41;97',
};

const SKIPPED_KEYS = new Set(['service', 'time', 'level', 'msg', 'pid', 'hostname', 'err']);

function levelName(level: unknown): string {
  if (typeof level === 'number') return NUMERIC_LEVELS[level] ?? String(level);
  if (typeof level === 'string') return level.toLowerCase();
  return '';
}

/** The `HH:MM:SS.mmm` of an ISO time (kept as written: UTC for pino's isoTime) or of epoch ms. */
export function clockTime(time: unknown): string {
  if (typeof time === 'string') {
    const m = /T(\d{2}:\d{2}:\d{2})(?:\.(\d{1,3})\d*)?/.exec(time);
    if (m) return `${m[1]}.${(m[2] ?? '').padEnd(3, '0')}`;
    return time;
  }
  if (typeof time === 'number' && Number.isFinite(time)) return new Date(time).toISOString().slice(11, 23);
  return '';
}

function renderValue(v: unknown): string {
  // eslint-disable-next-line no-control-regex -- a control character is exactly what must be quoted
  if (typeof v === 'string') return v === '' || /[\s"=\\]/.test(v) || /[\u0000-\u001f]/.test(v) ? JSON.stringify(v) : v;
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  if (v === undefined) return 'undefined';
  return JSON.stringify(v);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The pretty form of one log line, without the tag; may span several lines (an error's stack). */
export function formatLogLine(line: string, color: boolean): string {
  let rec: unknown;
  try {
    rec = JSON.parse(line);
  } catch {
    return line;
  }
  if (!isRecord(rec)) return line;

  const level = levelName(rec.level);
  const parts: string[] = [];
  const time = clockTime(rec.time);
  if (time) parts.push(paint('2', time, color));
  if (level) parts.push(paint(LEVEL_COLORS[level] ?? '0', level.toUpperCase().padEnd(5), color));
  if (rec.msg !== undefined) parts.push(typeof rec.msg === 'string' ? rec.msg : renderValue(rec.msg));

  const err = rec.err;
  const kv: Array<[string, unknown]> = Object.entries(rec).filter(([k]) => !SKIPPED_KEYS.has(k));
  if (err !== undefined && !isRecord(err)) kv.unshift(['err', err]);
  if (isRecord(err)) {
    for (const [k, v] of Object.entries(err)) if (!['type', 'message', 'stack'].includes(k)) kv.push([`err.${k}`, v]);
  }
  for (const [k, v] of kv) parts.push(`${paint('2', `${k}=`, color)}${renderValue(v)}`);

  const out = [parts.join(' ')];
  if (isRecord(err)) {
    const message = typeof err.message === 'string' ? err.message : undefined;
    const stack = typeof err.stack === 'string' ? err.stack : undefined;
    const type = typeof err.type === 'string' ? err.type : 'Error';
    const errLines: string[] = [];
    // A stack starts with "Type: message" already; print the message alone only when it does not.
    if (message !== undefined && !(stack && stack.split('\n', 1)[0]?.includes(message)))
      errLines.push(`${type}: ${message}`);
    if (stack) errLines.push(...stack.split('\n'));
    const errColor = level === 'warn' ? '33' : '31';
    for (const [i, l] of errLines.entries())
      out.push(`    ${i === 0 ? paint(errColor, l, color) : paint('2', l, color)}`);
  }
  return out.join('\n');
}

/** One line of a child's output, as `sagas start` prints it: each physical line tagged. */
export function formatLine(name: string, line: string, opts: FormatOptions): string {
  const tag = formatTag(name, opts);
  const body = opts.json ? line : formatLogLine(line, opts.color);
  return body
    .split('\n')
    .map((l) => tag + l)
    .join('\n');
}

/** Colors when the stream is a terminal and NO_COLOR is unset (https://no-color.org). */
export function useColor(stream: { isTTY?: boolean }, env: Readonly<Record<string, string | undefined>>): boolean {
  return stream.isTTY === true && (env.NO_COLOR === undefined || env.NO_COLOR === '');
}

/**
 * The gist of why a process failed, from its last output lines, for a one-screen error report:
 * its error/fatal log lines as "msg: error message" (no stacks); failing that, its raw lines
 * (e.g. a Node crash on stderr) without stack frames.
 */
export function failureSummary(lines: readonly string[], max = 10): string[] {
  const fromLogs: string[] = [];
  for (const line of lines) {
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch {
      continue;
    }
    if (!isRecord(rec)) continue;
    const level = levelName(rec.level);
    if (level !== 'error' && level !== 'fatal') continue;
    const msg = typeof rec.msg === 'string' ? rec.msg : '';
    const err = isRecord(rec.err) ? rec.err : undefined;
    const errText = err && typeof err.message === 'string' ? err.message : undefined;
    const code = err && (typeof err.code === 'string' || typeof err.code === 'number') ? ` (${err.code})` : '';
    fromLogs.push([msg, errText && errText !== msg ? `${errText}${code}` : ''].filter(Boolean).join(': ') || line);
  }
  if (fromLogs.length) return fromLogs.slice(-max);
  const plain = lines.filter((l) => !/^\s+at\s/.test(l) && l.trim() !== '' && !/^Node\.js v\d/.test(l));
  return plain.slice(-max);
}
