/**
 * A process for test/integration/faults-crash.test.ts to watch die of an injected `crash` fault.
 * `participant <TLS_DIR>`: a payment gRPC server (stub handler) under mutual TLS, honouring the
 * gateway's x-fault; it sends its address.
 * `gateway <saga.db>`: a saga engine with the faults interceptor and a crash rule at
 * `after_intent` of the one step of a one-step saga; it starts that saga.
 */
import { metrics } from '@opentelemetry/api';
import { PaymentServiceService, ChargeOutcome } from '../../src/gen/payment/v1/payment.js';
import { serverCredentials, startGrpcServer, unary } from '../../src/platform/grpc/grpc.js';
import { FaultBoard, validateFaultPlan } from '../../src/faults/plan.js';
import { SagaEngine } from '../../src/saga/engine.js';
import { faults } from '../../src/faults/gateway.js';
import { aroundWithFaults } from '../../src/faults/participant.js';
import { SqliteSagaLog } from '../../src/saga/stores/sqlite.js';
import { silentLogger } from './participants.js';

const [mode, file] = process.argv.slice(2);

if (mode === 'participant' && file) {
  const charge = unary('Charge', silentLogger, () => ({
    outcome: ChargeOutcome.CHARGE_OUTCOME_CHARGED,
    declineReason: '',
  }));
  const server = await startGrpcServer(
    { host: '127.0.0.1', port: 0 },
    [{ definition: PaymentServiceService, implementation: { charge, refund: charge } }],
    serverCredentials({ kind: 'mtls', dir: file }, 'payment'),
    {
      around: aroundWithFaults({ service: 'payment', logger: silentLogger }),
    },
  );
  process.send?.({ address: server.address });
} else if (mode === 'gateway' && file) {
  const board = new FaultBoard(
    validateFaultPlan({ rules: [{ id: 'die', target: { step: 'one' }, kind: 'crash', crash_point: 'after_intent' }] }),
  );
  const log = new SqliteSagaLog({ file, synchronous: 'full' });
  const engine = new SagaEngine({
    log,
    logger: silentLogger,
    interceptors: [faults(board, { logger: silentLogger, meter: metrics.getMeter('test') })],
  });
  engine.register({
    name: 'tiny',
    version: 1,
    steps: [
      {
        name: 'one',
        kind: 'compensatable',
        action: async () => ({ ok: true }),
        compensate: async () => ({ ok: true }),
      },
    ],
  });
  await engine.start('tiny', { id: 'saga_crash_1', input: null });
  // The crash comes at the step's after_intent checkpoint; if it does not, say so.
  setTimeout(() => process.send?.({ alive: true }), 2_000);
}
