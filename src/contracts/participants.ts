import type { OrderServiceClient } from '../gen/order/v1/order.js';
import type { InventoryServiceClient } from '../gen/inventory/v1/inventory.js';
import type { PaymentServiceClient } from '../gen/payment/v1/payment.js';

/** The participants a place-order saga drives, by the name logs, errors and fault rules use. */
export type ParticipantName = 'order' | 'inventory' | 'payment';
export const PARTICIPANTS: readonly ParticipantName[] = ['order', 'inventory', 'payment'];

/**
 * A gRPC client of each participant (the proto contracts' generated types): what the gateway
 * dials (src/gateway/participants.ts) and what `sagas reconcile` reads the books through.
 */
export interface ParticipantClients {
  order: OrderServiceClient;
  inventory: InventoryServiceClient;
  payment: PaymentServiceClient;
}
