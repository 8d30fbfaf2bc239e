import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Meter } from '@opentelemetry/api';
import type { IdempotencyGuard } from '../../platform/storage/idempotency.js';
import type { Logger } from '../../platform/telemetry/logger.js';
import type { SagaEngine } from '../../saga/index.js';
import type { Participants } from '../participants.js';
import type { Pricing } from '../pricing.js';
import type { OrderView } from './schemas.js';
import type { SagaHandle } from '../../saga/index.js';
import type { PlaceOrderInput, PlaceOrderResults } from '../place-order.js';

/** A POST's answer as replayed for a repeated idempotency key. */
export interface StoredResponse {
  status: number;
  body: OrderView;
}

/** What one gateway takes on at once; over a limit it answers at once instead of queueing. */
export interface HttpLimits {
  /** `Prefer: wait` requests waiting at once; more are answered at once (PENDING). */
  maxWaiters: number;
  /** Sagas this gateway drives at once; a POST over it is 503 `overloaded`, nothing stored. */
  maxInFlight: number;
  maxConnections: number;
  /** A request must have arrived and been answered within this long. */
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** Requests a minute per client address; 0: no limit. */
  ratePerMinute: number;
}

export const DEFAULT_LIMITS: HttpLimits = {
  maxWaiters: 1_000,
  maxInFlight: 1_000,
  maxConnections: 1_024,
  requestTimeoutMs: 90_000,
  keepAliveTimeoutMs: 5_000,
  ratePerMinute: 0,
};

/** What the gateway's HTTP layer is built from; each route plugin takes the part it needs. */
export interface GatewayOptions {
  engine: SagaEngine;
  /** The place-order saga's typed handle (what `engine.register(placeOrderSaga(...))` returned). */
  placeOrder: SagaHandle<PlaceOrderInput, PlaceOrderResults>;
  /** Where HTTP metrics go and what /metrics serves. */
  meter: Meter;
  serveMetrics?: (req: IncomingMessage, res: ServerResponse) => void;
  idempotency: IdempotencyGuard<StoredResponse>;
  /** Which store the idempotency fast path is on, for /readyz. */
  fastPathMode?: () => 'redis' | 'memory';
  onReplay?: () => void;
  participants: Participants;
  logger: Logger;
  /** Cap on `Prefer: wait=N`. */
  maxWaitSeconds?: number;
  /** Deadline of the reads a GET makes to participants. */
  readTimeoutMs?: number;
  bodyLimitBytes?: number;
  limits?: Partial<HttpLimits>;
  /** Whose prices an order is placed at (PRICING); default `client`. */
  pricing?: Pricing;
}

export const DEFAULT_READ_TIMEOUT_MS = 2_000;
export const DEFAULT_MAX_WAIT_SECONDS = 60;
