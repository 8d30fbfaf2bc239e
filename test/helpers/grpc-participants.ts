import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import { connectParticipants, type Participants } from '../../src/gateway/participants.js';
import { OrderServiceService } from '../../src/gen/order/v1/order.js';
import { InventoryServiceService } from '../../src/gen/inventory/v1/inventory.js';
import { PaymentServiceService } from '../../src/gen/payment/v1/payment.js';
import { startGrpcServer } from '../../src/platform/grpc.js';

export interface ServedParticipants {
  participants: Participants;
  /** Stops the server (the clients stay, and see the participants gone). */
  stopServer(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The three participant services (real ones or stubs) on one real gRPC server on port 0, in this
 * process, and the gateway's own clients to it: the product's `startGrpcServer` (with its health
 * service) and `connectParticipants`, so tests dial the way the gateway does.
 */
export async function serveParticipants(impl: {
  order: UntypedServiceImplementation;
  inventory: UntypedServiceImplementation;
  payment: UntypedServiceImplementation;
}): Promise<ServedParticipants> {
  const server = await startGrpcServer({ host: '127.0.0.1', port: 0 }, [
    { definition: OrderServiceService, implementation: impl.order },
    { definition: InventoryServiceService, implementation: impl.inventory },
    { definition: PaymentServiceService, implementation: impl.payment },
  ]);
  const participants = connectParticipants({ order: server.address, inventory: server.address, payment: server.address });
  return {
    participants,
    stopServer: () => server.shutdown(0),
    async close() {
      participants.close();
      await server.shutdown(0);
    },
  };
}
