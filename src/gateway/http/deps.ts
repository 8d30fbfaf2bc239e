import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Meter } from '@opentelemetry/api';
import type { IdempotencyGuard } from '../../platform/idempotency.js';
import type { Logger } from '../../platform/logger.js';
import type { SagaEngine } from '../../saga/engine.js';
import type { SagaLog } from '../../saga/model.js';
import type { Participants } from '../participants.js';
import type { OrderView } from './schemas.js';

/** A POST's answer as replayed for a repeated idempotency key. */
export interface StoredResponse {
  status: number;
  body: OrderView;
}

/** What the gateway's HTTP layer is built from; each route plugin takes the part it needs. */
export interface GatewayOptions {
  engine: SagaEngine;
  /** Where HTTP metrics go and what /metrics serves. */
  meter: Meter;
  serveMetrics?: (req: IncomingMessage, res: ServerResponse) => void;
  idempotency: IdempotencyGuard<StoredResponse>;
  /** Which store the idempotency fast path is on, for /readyz. */
  fastPathMode?: () => 'redis' | 'memory';
  onReplay?: () => void;
  store: SagaLog;
  participants: Participants;
  logger: Logger;
  /** Cap on `Prefer: wait=N`. */
  maxWaitSeconds?: number;
  /** Deadline of the reads a GET makes to participants. */
  readTimeoutMs?: number;
  bodyLimitBytes?: number;
}

export const DEFAULT_READ_TIMEOUT_MS = 2_000;
export const DEFAULT_MAX_WAIT_SECONDS = 60;
