import { redactPassword, type SagaLogSettings } from '../../platform/config/config.js';
import type { Logger } from '../../platform/telemetry/logger.js';
import type { SagaLog } from '../model.js';
import { SqliteSagaLog } from './sqlite.js';

/** Which saga log to open: the one choice a composition root (gateway, CLI) makes about storage. */
export type SagaLogConfig = SagaLogSettings;

export interface OpenOptions {
  logger?: Logger;
  /** Tools that only read (sagas inspect): no migrations, no writes. */
  readonly?: boolean;
}

/** The address of a log for messages: the URL without its password. */
export function describeSagaLog(cfg: SagaLogConfig): string {
  return cfg.kind === 'sqlite' ? cfg.file : redactPassword(cfg.url);
}

/**
 * Opens the configured saga log, with its schema migrated (unless read-only). PostgreSQL's driver
 * is loaded only when asked for, so the embedded default needs nothing of it.
 */
export async function openSagaLog(cfg: SagaLogConfig, opts: OpenOptions = {}): Promise<SagaLog> {
  if (cfg.kind === 'sqlite')
    return new SqliteSagaLog({ file: cfg.file, synchronous: cfg.synchronous, readonly: opts.readonly });
  const { PostgresSagaLog } = await import('./postgres.js');
  return PostgresSagaLog.open({ ...cfg, readonly: opts.readonly, logger: opts.logger });
}
