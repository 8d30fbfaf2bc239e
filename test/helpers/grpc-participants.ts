import type { ServiceDefinition, UntypedServiceImplementation } from '@grpc/grpc-js';
import { connectParticipants, type Participants } from '../../src/gateway/participants.js';
import { OrderServiceService } from '../../src/gen/order/v1/order.js';
import { InventoryServiceService } from '../../src/gen/inventory/v1/inventory.js';
import { PaymentServiceService } from '../../src/gen/payment/v1/payment.js';
import { serverCredentials, startGrpcServer, type RunningServer } from '../../src/platform/grpc/grpc.js';
import type { GrpcSecurity } from '../../src/platform/grpc/tls.js';
import { testTls } from './tls.js';
import { silentLogger } from './participants.js';
import type { Logger } from '../../src/platform/telemetry/logger.js';
import { aroundWithFaults } from '../../src/faults/participant.js';

export interface ServedParticipants {
  participants: Participants;
  /** Where each server listens, and the security they were served with (for clients of a test's own). */
  addresses: Record<'order' | 'inventory' | 'payment', string>;
  security: GrpcSecurity;
  /** Stops the server (the clients stay, and see the participants gone). */
  stopServer(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The three participant services (real ones or stubs), each on its own real gRPC server on port 0
 * with its own certificate, in this process, and the gateway's own clients to them: the
 * product's `startGrpcServer` (with its health service), `serverCredentials` and
 * `connectParticipants`, so tests dial the way the gateway does — over mutual TLS by default.
 */
export async function serveParticipants(
  impl: {
    order: UntypedServiceImplementation;
    inventory: UntypedServiceImplementation;
    payment: UntypedServiceImplementation;
  },
  security?: GrpcSecurity,
  /** `faults`: the servers honour `x-fault` metadata, as with FAULTS_ENABLED=1 (default off). */
  opts: { faults?: boolean; logger?: Logger } = {},
): Promise<ServedParticipants> {
  const sec = security ?? (await testTls());
  const serve = (name: 'order' | 'inventory' | 'payment', definition: ServiceDefinition) =>
    startGrpcServer(
      { host: '127.0.0.1', port: 0 },
      [{ definition, implementation: impl[name] }],
      serverCredentials(sec, name),
      {
        around: opts.faults ? aroundWithFaults({ service: name, logger: opts.logger ?? silentLogger }) : undefined,
      },
    );
  const servers: RunningServer[] = await Promise.all([
    serve('order', OrderServiceService),
    serve('inventory', InventoryServiceService),
    serve('payment', PaymentServiceService),
  ]);
  const [order, inventory, payment] = servers.map((s) => s.address);
  const participants = connectParticipants(
    { order: order ?? '', inventory: inventory ?? '', payment: payment ?? '' },
    sec,
  );
  const stopServers = async () => {
    await Promise.all(servers.map((s) => s.shutdown(0)));
  };
  return {
    participants,
    addresses: { order: order ?? '', inventory: inventory ?? '', payment: payment ?? '' },
    security: sec,
    stopServer: stopServers,
    async close() {
      participants.close();
      await stopServers();
    },
  };
}
