import path from 'node:path';
import { metrics } from '@opentelemetry/api';
import { buildGateway, type StoredResponse } from '../../src/gateway/http/app.js';
import { buildAdmin, type AdminApp } from '../../src/gateway/admin/app.js';
import { recentSagas, type RecentSagas } from '../../src/gateway/admin/recent.js';
import { parseAdminTokens } from '../../src/gateway/admin/tokens.js';
import type { HttpLimits } from '../../src/gateway/http/deps.js';
import { PLACE_ORDER_VERSIONS, placeOrderSaga } from '../../src/gateway/place-order.js';
import type { FaultBoard } from '../../src/faults/plan.js';
import { tracing } from '../../src/saga/interceptors.js';
import { faults } from '../../src/faults/gateway.js';
import type { EnginePolicies } from '../../src/saga/definition.js';
import { MemoryKv, type FastKv } from '../../src/platform/storage/fast-kv.js';
import {
  createIdempotencyGuard,
  type IdempotencyGuard,
  type UntrustedReason,
} from '../../src/platform/storage/idempotency.js';
import { SagaEngine } from '../../src/saga/engine.js';
import { SqliteSagaLog } from '../../src/saga/stores/sqlite.js';
import { createOrderService } from '../../src/services/order/server.js';
import { openOrderDatabase } from '../../src/services/order/store.js';
import { createInventoryService } from '../../src/services/inventory/server.js';
import { applyCatalogPrices, openInventoryDatabase } from '../../src/services/inventory/store.js';
import type { Pricing } from '../../src/gateway/pricing.js';
import { createPaymentService } from '../../src/services/payment/server.js';
import { openPaymentDatabase } from '../../src/services/payment/store.js';
import { DEFAULT_CATALOG, type Catalog } from '../../src/services/inventory/domain.js';
import { silentLogger, tempDir } from './participants.js';
import type { Logger } from '../../src/platform/telemetry/logger.js';
import type { Db } from '../../src/platform/storage/db.js';
import { serveParticipants } from './grpc-participants.js';
import type { Participants } from '../../src/gateway/participants.js';

export interface GatewayApp {
  app: Awaited<ReturnType<typeof buildGateway>>;
  /** The admin listener's app (not listening: inject), with `adminTokens` (default none: loopback only). */
  admin: AdminApp;
  recent: RecentSagas;
  engine: SagaEngine;
  log: SqliteSagaLog;
  idempotency: IdempotencyGuard<StoredResponse>;
  /** The participants' databases (to look at what they hold). */
  dbs: { order: Db; inventory: Db; payment: Db };
  /** The gateway's own clients of the participants (to act on them behind the saga's back). */
  participants: Participants;
  /** Gives the products this catalog's prices, as a restart of the inventory service with it would. */
  setCatalogPrices(catalog: Catalog): void;
  /** Stops the participants' gRPC server (the gateway stays up). */
  stopParticipants(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The gateway's HTTP app for `inject()` tests, over real parts in this process: the three
 * participants on one real gRPC server (port 0) with their SQLite files, a SQLite saga log, the
 * engine with the place-order saga, and the in-memory idempotency fast path.
 */
export interface GatewayAppOptions {
  catalog?: Catalog;
  chargeLimitCents?: number;
  limits?: Partial<HttpLimits>;
  /** The gateway's idempotency fast path (default: the in-memory one); closed by `close()`. */
  kv?: FastKv;
  onUntrusted?: (key: string, why: UntrustedReason) => void;
  /** PRICING (default client). */
  pricing?: Pricing;
  /** ADMIN_TOKENS as written (`name:role:token,...`); default none: loopback clients only. */
  adminTokens?: string;
  /** TRACE_URL_TEMPLATE. */
  traceUrlTemplate?: string;
  /** The admin app's clock (session expiry, ages). */
  now?: () => number;
  /** Where the gateway's (and the admin listener's) log lines go; default silent. */
  logger?: Logger;
  /** The fault switchboard (as FAULTS_ENABLED=1 on the gateway): its interceptor and admin routes. */
  faults?: FaultBoard;
  /** Whether the participants honour `x-fault` (FAULTS_ENABLED=1 there); default: as `faults` is set. */
  participantFaults?: boolean;
  /** The engine's policies (e.g. shorter backoffs). */
  policies?: Partial<EnginePolicies>;
  /** SAGA_STUCK_AFTER of the admin listener (ms; default its own, 60 s). */
  stuckAfterMs?: number;
  /** Randomness of the fault interceptor (default Math.random). */
  random?: () => number;
  /** The place-order versions registered and the one new orders start on (as PLACE_ORDER_VERSIONS and PLACE_ORDER_START_VERSION); default v1 only. */
  placeOrderVersions?: { registered: readonly number[]; start: number };
}

export async function gatewayApp(opts: GatewayAppOptions = {}): Promise<GatewayApp> {
  const dir = tempDir('gateway-app-');
  const logger = opts.logger ?? silentLogger;
  const kv = opts.kv ?? new MemoryKv();
  const guard = (name: string) =>
    createIdempotencyGuard<unknown>(kv, { namespace: `${name}:`, ttlMs: 60_000, lockMs: 10_000 });
  const dbs = {
    order: openOrderDatabase(path.join(dir, 'order.db')),
    inventory: openInventoryDatabase(path.join(dir, 'inventory.db')),
    payment: openPaymentDatabase(path.join(dir, 'payment.db')),
  };
  const served = await serveParticipants(
    {
      order: createOrderService({ db: dbs.order, logger, fastPath: guard('order') }),
      inventory: createInventoryService({
        db: dbs.inventory,
        logger,
        catalog: opts.catalog ?? DEFAULT_CATALOG,
        fastPath: guard('inventory'),
      }),
      payment: createPaymentService({
        db: dbs.payment,
        logger,
        chargeLimitCents: opts.chargeLimitCents ?? 50_000,
        fastPath: guard('payment'),
      }),
    },
    undefined,
    { faults: opts.participantFaults ?? opts.faults !== undefined, logger },
  );
  const participants = served.participants;
  const log = new SqliteSagaLog({ file: path.join(dir, 'saga.db'), synchronous: 'normal' });
  const recent = recentSagas();
  const faultInterceptors = opts.faults
    ? [
        faults(opts.faults, {
          logger,
          meter: metrics.getMeter('test'),
          random: opts.random,
        }),
      ]
    : [];
  const engine = new SagaEngine({
    log,
    logger,
    interceptors: [...(opts.faults ? [tracing()] : []), recent.interceptor, ...faultInterceptors],
    policies: opts.policies,
  });
  const versions = opts.placeOrderVersions;
  const handles = (versions?.registered ?? []).map((v) => {
    const def = PLACE_ORDER_VERSIONS[v];
    if (!def) throw new Error(`no place_order v${v}`);
    return engine.register(def(participants), { startsNew: v === versions?.start });
  });
  const placeOrder =
    handles.find((h) => h.version === versions?.start) ?? engine.register(placeOrderSaga(participants));
  const idempotency = createIdempotencyGuard<StoredResponse>(kv, {
    namespace: 'gateway:',
    ttlMs: 60_000,
    lockMs: 10_000,
    onUntrusted: opts.onUntrusted,
  });
  const app = await buildGateway({
    engine,
    placeOrder,
    participants,
    logger,
    meter: metrics.getMeter('test'),
    idempotency,
    limits: opts.limits,
    pricing: opts.pricing,
  });
  await app.ready();
  const admin = await buildAdmin({
    engine,
    participants,
    logger,
    meter: metrics.getMeter('test'),
    tokens: parseAdminTokens(opts.adminTokens),
    traceUrlTemplate: opts.traceUrlTemplate,
    recent,
    now: opts.now,
    stuckAfterMs: opts.stuckAfterMs,
    faults: opts.faults,
  });
  await admin.ready();
  return {
    app,
    admin,
    recent,
    engine,
    log,
    idempotency,
    dbs,
    participants,
    setCatalogPrices: (catalog) => applyCatalogPrices(dbs.inventory, catalog),
    stopParticipants: () => served.stopServer(),
    async close() {
      await app.close();
      await admin.close();
      await engine.shutdown(1_000);
      await served.close();
      await log.close();
      for (const db of Object.values(dbs)) db.close();
      await kv.close();
    },
  };
}
