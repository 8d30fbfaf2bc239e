import assert from 'node:assert/strict';
import { AppError } from '../../src/platform/errors.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { after } from 'node:test';
import {
  Metadata,
  type handleUnaryCall,
  type ServerErrorResponse,
  type ServerUnaryCall,
  type ServiceError,
  type StatusObject,
} from '@grpc/grpc-js';
import { pino, type Logger } from 'pino';
import { IDEMPOTENCY_KEY_MD, errorCodeOf } from '../../src/platform/grpc/grpc.js';
import type { ReadyMessage } from '../../src/platform/process/lifecycle.js';
import type { Db } from '../../src/platform/storage/db.js';
import type { CreateOrderRequest } from '../../src/gen/order/v1/order.js';

/** Helpers for the participant service tests (test/{unit,integration}/{order,inventory,payment}-service.test.ts). */

export const silentLogger = pino({ level: 'silent' });

/** A logger that keeps its lines (parsed) so a test can check what a service logs, and at which level. */
export function captureLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: 'debug', formatters: { level: (label) => ({ level: label }) } },
    { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { logger, lines };
}

const tempDirs: string[] = [];
process.on('exit', () => {
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** A fresh folder under the OS temp dir, removed when the test process exits. */
export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
  tempDirs.push(dir);
  return dir;
}

/**
 * A participant's database in a fresh folder (`opener`: openOrderDatabase and the like), closed
 * after the test file (unless the test closed it).
 */
export function tempDatabase(
  opener: (file: string) => Db,
  name: string,
  file = path.join(tempDir(name), `${name}.db`),
): Db {
  const db = opener(file);
  after(() => {
    if (db.open) db.close();
  });
  return db;
}

/** A CreateOrder request of two lines (2 × 10.50 + 9.99), with what a test changes. */
export function createOrderRequest(overrides: Partial<CreateOrderRequest> = {}): CreateOrderRequest {
  return {
    orderId: 'ord-1',
    customerId: 'cust-1',
    items: [
      { productId: 'prod_1', quantity: 2, unitPriceCents: 1_050 },
      { productId: 'prod_2', quantity: 1, unitPriceCents: 999 },
    ],
    createdAtMs: 0,
    ...overrides,
  };
}

/** A clock the test moves by hand, so timestamps are exact. */
export function manualClock(start = 1_700_000_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

/**
 * Calls a service handler in-process, as grpc-js would: with the key in metadata, through the
 * same `unary()` adapter, so errors arrive as ServiceErrors carrying x-error-code.
 */
export function invoke<Req, Res>(
  handler: handleUnaryCall<Req, Res>,
  request: Req,
  idempotencyKey?: string,
): Promise<Res> {
  const metadata = new Metadata();
  if (idempotencyKey !== undefined) metadata.set(IDEMPOTENCY_KEY_MD, idempotencyKey);
  // The adapter reads only `request`, `metadata` and the method path; a full ServerUnaryCall needs a live stream.
  const call = { request, metadata, getPath: () => '/test.v1.InProcess/Call' } as unknown as ServerUnaryCall<Req, Res>;
  return new Promise((resolve, reject) => {
    handler(call, (err, res) => (err ? reject(asError(err)) : resolve(res as Res)));
  });
}

/**
 * A failed call's status as grpc-js's client hands it over: an Error carrying the code, details
 * and metadata. In-process nothing has made one yet; the adapter answers with a plain status object.
 */
function asError(status: Partial<StatusObject>): ServerErrorResponse {
  return status instanceof Error ? status : Object.assign(new Error(status.details), status);
}

/** Resolves to the AppError code a failed call carried (via x-error-code), failing if it succeeded. */
export async function errorCode(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (err) {
    return failureCode(err);
  }
  throw new Error('expected the call to fail');
}

/** The AppError code a call's error carried (via x-error-code). */
export function failureCode(err: unknown): string | undefined {
  // The metadata is read directly, so a handler's plain status object (not an Error, which
  // errorCodeOf wants) is read too; the metadata is the same either way.
  const md = (err as Partial<ServiceError>).metadata;
  const code = md?.get('x-error-code')[0];
  return typeof code === 'string' ? code : errorCodeOf(err);
}

const ROOT = path.resolve(import.meta.dirname, '../..');

export interface RunningMain {
  ready: Promise<ReadyMessage>;
  exit: Promise<{ code: number | null; stderr: string }>;
  /** The lines the process wrote to stdout (its log) so far. */
  stdout(): string[];
  stop(): void;
}

/** Starts a service's main.ts as its own process (as the supervisor would), with an IPC channel for 'ready'. */
export function startMain(service: string, env: Record<string, string>): RunningMain {
  const child = fork(path.join(ROOT, 'src/services', service, 'main.ts'), [], {
    cwd: ROOT,
    execArgv: ['--import', 'tsx'],
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'silent', ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let stderr = '';
  let stdout = '';
  child.stdout?.on('data', (chunk: Buffer) => void (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => void (stderr += chunk.toString()));
  // 'close', not 'exit': it waits for stderr to be fully read.
  const exit = once(child, 'close').then(([code]) => ({ code: code as number | null, stderr }));
  const ready = new Promise<ReadyMessage>((resolve, reject) => {
    child.on('message', (msg: ReadyMessage) => {
      if (msg.type === 'ready') resolve(msg);
    });
    void exit.then(({ code, stderr: err }) => reject(new Error(`${service} exited with ${code} before ready: ${err}`)));
  });
  // A test that fails early must not leave a rejected promise nobody awaits.
  ready.catch(() => undefined);
  return { ready, exit, stdout: () => stdout.split('\n').filter((l) => l !== ''), stop: () => child.kill('SIGTERM') };
}

/** The code of the AppError that `fn` throws, failing if it throws anything else or nothing. */
export function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof AppError, `expected an AppError, got ${String(err)}`);
    return err.code;
  }
  throw new Error('expected a throw');
}
