import { createLogger } from '../platform/telemetry/logger.js';
import { ConfigError } from '../platform/errors.js';
import { armCrashPoints } from '../platform/process/crash.js';
import { notifyReady, onShutdown } from '../platform/process/lifecycle.js';
import {
  SagaEngine,
  SagaLogError,
  VersionsStrandedError,
  crashPoints,
  inFlightOf,
  refName,
  tracing,
  type SagaInterceptor,
  sagaMetrics,
} from '../saga/index.js';
import { readFileSync } from 'node:fs';
import { FaultBoard, FaultPlanError, readFaultPlan } from '../faults/plan.js';
import { vocabularyOf } from '../faults/vocabulary.js';
import { faults } from '../faults/gateway.js';
import { describeSagaLog, openSagaLog } from '../saga/stores/open.js';
import { gatewayConfig } from './config.js';
import { buildGateway, type StoredResponse } from './http/app.js';
import { ResilientKv, observeFallback } from '../platform/storage/fast-kv.js';
import { initTelemetry } from '../platform/telemetry/telemetry.js';
import { createIdempotencyGuard, observeUntrusted } from '../platform/storage/idempotency.js';
import { connectParticipants } from './participants.js';
import { prepareGrpcSecurity, TlsError } from '../platform/grpc/tls.js';
import { PLACE_ORDER_VERSIONS } from './place-order.js';
import { buildAdmin } from './admin/app.js';
import { recentSagas } from './admin/recent.js';
import { BulkRunner } from './bulk-runner.js';
import { startPruner } from './retention.js';

/** A listener's URL one can dial: all interfaces (0.0.0.0, ::) as loopback. */
function dialable(url: string): string {
  return url.replace('0.0.0.0', '127.0.0.1').replace('[::]', '[::1]');
}

export async function main(): Promise<void> {
  // The gateway's only read of the environment; a bad configuration (every bad variable named)
  // ends the process before anything is opened.
  let config;
  try {
    config = gatewayConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`gateway: invalid configuration: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const logger = createLogger('gateway', config.logging);
  armCrashPoints(config.crash, logger);
  const telemetry = initTelemetry(logger, config.telemetry);
  let store;
  try {
    store = await openSagaLog(config.sagaLog, { logger });
  } catch (err) {
    // A SagaLogError already names the log (without its password) and the reason.
    const message =
      err instanceof SagaLogError
        ? err.message
        : `cannot open the saga log ${describeSagaLog(config.sagaLog)}: ${(err as Error).message}`;
    logger.fatal({ err, saga_log: describeSagaLog(config.sagaLog) }, message);
    await telemetry.shutdown();
    process.exit(1);
  }
  let participants;
  try {
    await prepareGrpcSecurity(config.grpc, logger);
    participants = connectParticipants(config.participants, config.grpc, {
      // A replica lost or back: calls already go to the others (or to it again).
      onAddressChange: (participant, c) =>
        logger[c.up ? 'info' : 'warn'](
          { participant, address: c.address, up: c.upCount, of: c.of, ...(c.up ? {} : { reason: c.reason }) },
          `${participant} at ${c.address} is ${c.up ? 'back' : `down (${c.reason})`}: ${c.upCount} of ${c.of} addresses up`,
        ),
    });
  } catch (err) {
    if (!(err instanceof TlsError)) throw err;
    logger.fatal({ code: err.code }, `cannot start mutual TLS: ${err.message}`);
    await store.close();
    await telemetry.shutdown();
    process.exit(1);
  }
  // The fault switchboard: nothing at all unless FAULTS_ENABLED=1, and then one warning saying so.
  // Its plan is loaded once the sagas are registered: a rule may name only their steps and calls.
  const board = config.faults.enabled ? new FaultBoard() : undefined;
  if (!board && config.faults.file) {
    logger.warn(
      { FAULTS_FILE: config.faults.file },
      'FAULTS_FILE is ignored: the fault switchboard is off (FAULTS_ENABLED=1 switches it on)',
    );
  }
  const faultInterceptors: SagaInterceptor[] = board ? [faults(board, { logger, meter: telemetry.meter })] : [];
  // What this gateway finished in the last minute, for the console's overview.
  const recent = recentSagas();
  const engine = new SagaEngine({
    log: store,
    logger,
    leaseMs: config.leaseMs,
    policies: config.policies,
    // Outermost first: the span is open while metrics, crash points and faults run; an injected
    // latency is inside the metrics' step duration.
    interceptors: [
      tracing(),
      sagaMetrics(telemetry.meter, store, Date.now, { stuckAfterMs: config.stuckAfterMs }),
      recent.interceptor,
      crashPoints(),
      ...faultInterceptors,
    ],
  });
  // Every version this gateway drives; new orders start on one. A saga runs to its end on the
  // version it started on, here or on a gateway that has it.
  const handles = config.placeOrder.versions.map((version) => {
    const build = PLACE_ORDER_VERSIONS[version];
    if (!build) throw new Error(`place_order v${version} is not in this build`);
    return engine.register(build(participants), { startsNew: version === config.placeOrder.startVersion });
  });
  const placeOrder = handles.find((h) => h.version === config.placeOrder.startVersion) ?? handles[0];
  if (!placeOrder) throw new Error('PLACE_ORDER_VERSIONS names no version');
  // A version dropped from this gateway while sagas still use it would strand them: refuse to start.
  try {
    const views = await engine.checkVersions();
    const others = views.filter((view) => view.state === 'left_to_others' && inFlightOf(view) > 0);
    if (others.length > 0)
      logger.warn(
        { versions: others.map((o) => ({ version: refName(o), in_flight: inFlightOf(o) })) },
        'sagas in flight on versions this gateway does not have: left to the gateways that have them',
      );
  } catch (err) {
    if (!(err instanceof VersionsStrandedError)) throw err;
    logger.fatal({ code: err.code }, `cannot start: ${err.message}`);
    await store.close();
    await telemetry.shutdown();
    process.exit(1);
  }
  if (board) {
    try {
      if (config.faults.file) {
        const plan = readFaultPlan(readFileSync(config.faults.file, 'utf8'));
        board.replace(plan, vocabularyOf(engine.registered()));
      }
    } catch (err) {
      const why = err instanceof FaultPlanError ? err.message : (err as Error).message;
      logger.fatal({ FAULTS_FILE: config.faults.file }, `cannot load the fault plan FAULTS_FILE: ${why}`);
      await store.close();
      await telemetry.shutdown();
      process.exit(1);
    }
    logger.warn(
      { FAULTS_ENABLED: 1, FAULTS_FILE: config.faults.file ?? null, rules: board.size },
      `fault switchboard on: ${board.size} rule(s) loaded; faults will be injected`,
    );
  }
  const kv = new ResilientKv({ url: config.redis.url, logger });
  observeFallback(telemetry.meter, kv);
  const replays = telemetry.meter.createCounter('idempotency_replays', {
    description: 'Requests answered from an earlier one with the same idempotency key',
  });
  const idempotency = createIdempotencyGuard<StoredResponse>(kv, {
    onUntrusted: observeUntrusted(telemetry.meter, logger),
    namespace: `${config.redis.keyPrefix}:gateway:${await store.identity()}:idem:`,
    ttlMs: config.idempotencyTtlMs,
    lockMs: config.idempotencyLockMs,
  });
  const app = await buildGateway({
    engine,
    placeOrder,
    participants,
    logger,
    idempotency,
    meter: telemetry.meter,
    serveMetrics: telemetry.serveMetrics,
    onReplay: () => replays.add(1, { endpoint: 'POST /orders' }),
    fastPathMode: () => kv.mode(),
    maxWaitSeconds: config.maxWaitSeconds,
    limits: config.limits,
    pricing: config.pricing,
  });
  // Bulk actions' jobs live in the saga log's database; this gateway paces its share of them.
  const bulkStore = store.bulkJobs?.();
  const bulkRunner = bulkStore
    ? new BulkRunner({ store: bulkStore, engine, logger: logger.child({ component: 'bulk' }), leaseMs: config.leaseMs })
    : undefined;
  const admin =
    config.admin.listen === 'off'
      ? undefined
      : await buildAdmin({
          engine,
          retention: config.retention,
          participants,
          logger: logger.child({ listener: 'admin' }),
          meter: telemetry.meter,
          tokens: config.admin.tokens,
          traceUrlTemplate: config.admin.traceUrlTemplate,
          stuckAfterMs: config.stuckAfterMs,
          recent,
          faults: board,
          bulk: bulkStore ? { store: bulkStore, onChange: () => bulkRunner?.poke() } : undefined,
        });
  // Deadlines are stamped by the saga log's clock: measured before the first order is taken.
  await engine
    .syncClock()
    .catch((err: unknown) =>
      logger.warn({ err }, "could not read the saga log's clock yet; the next recovery tick measures it"),
    );
  const url = await app.listen({ host: config.http.host, port: config.http.port });
  let adminUrl: string | undefined;
  if (admin && config.admin.listen !== 'off') {
    try {
      adminUrl = dialable(await admin.listen({ host: config.admin.listen.host, port: config.admin.listen.port }));
    } catch (err) {
      logger.fatal({ err, admin_addr: config.admin.listen }, `cannot listen on ADMIN_ADDR: ${(err as Error).message}`);
      await app.close();
      await store.close();
      await telemetry.shutdown();
      process.exit(1);
    }
    if (admin.loopbackOnly) {
      logger.warn(
        { admin: adminUrl },
        'no ADMIN_TOKENS configured: the admin listener serves loopback clients only, each as the operator "local"',
      );
    }
  }
  engine.startBackground(config.recoveryIntervalMs);
  bulkRunner?.start();
  // Finished sagas older than the retention policy allows leave the log in bounded batches.
  const pruner = startPruner({ log: store, policy: config.retention, logger, meter: telemetry.meter });
  logger.info(
    {
      url,
      admin: adminUrl ?? 'off',
      saga_log: describeSagaLog(config.sagaLog),
      owner: engine.owner,
      participants: config.participants,
    },
    'gateway listening',
  );

  // The stop handlers before `ready`: a supervisor may send SIGTERM the moment it reads it.
  onShutdown(
    logger,
    async () => {
      // Both listeners stop accepting; in-flight requests finish.
      await Promise.all([app.close(), admin?.close()]);
      // The saga being acted on finishes; the jobs' leases go back for the next gateway.
      await bulkRunner?.stop();
      await pruner?.stop();
      await engine.shutdown(config.shutdownGraceMs);
      participants.close();
      await kv.close();
      await store.close();
      await telemetry.shutdown();
    },
    config.shutdownGraceMs + 5_000,
  );
  notifyReady({ service: 'gateway', address: dialable(url), ...(adminUrl ? { admin: adminUrl } : {}) });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
