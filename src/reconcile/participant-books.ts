/**
 * The participants' own books, read through their gRPC read methods (ListOrders, ListPayments,
 * ListReservations, ListProducts) with the gateway's clients (mutual TLS as for every call), and
 * turned into the plain records the rules read.
 */
import { callRpc, isUnavailable } from '../platform/grpc/grpc.js';
import { OrderStatus, type OrderEntry } from '../gen/order/v1/order.js';
import { PaymentStatus, type PaymentEntry } from '../gen/payment/v1/payment.js';
import { ReservationStatus, type Product, type ReservationEntry } from '../gen/inventory/v1/inventory.js';
import type { ParticipantClients, ParticipantName } from '../contracts/participants.js';
import type { OrderBook, PaymentBook, ProductBook, ReservationBook } from './books.js';

export interface BookPage<T> {
  entries: T[];
  /** '' on the last page. */
  nextPageToken: string;
}

/** One participant's books, a page at a time (`pageToken` '' for the first). */
export interface ParticipantBooks {
  orders(pageToken: string, pageSize: number): Promise<BookPage<OrderBook>>;
  payments(pageToken: string, pageSize: number): Promise<BookPage<PaymentBook>>;
  reservations(pageToken: string, pageSize: number): Promise<BookPage<ReservationBook>>;
  products(): Promise<ProductBook[]>;
}

/** A participant could not be read: unreachable (`participant_unavailable`) or it failed (`participant_error`). */
export class BooksReadError extends Error {
  constructor(
    readonly code: 'participant_unavailable' | 'participant_error',
    readonly participant: ParticipantName,
    message: string,
  ) {
    super(message);
    this.name = 'BooksReadError';
  }
}

function readFailed(err: unknown, participant: ParticipantName): BooksReadError {
  if (isUnavailable(err))
    return new BooksReadError(
      'participant_unavailable',
      participant,
      `the ${participant} service is unavailable: its books cannot be read`,
    );
  return new BooksReadError(
    'participant_error',
    participant,
    `the ${participant} service failed to list its books: ${err instanceof Error ? err.message : String(err)}`,
  );
}

const ORDER_STATUS: Partial<Record<OrderStatus, OrderBook['status']>> = {
  [OrderStatus.ORDER_STATUS_PENDING]: 'PENDING',
  [OrderStatus.ORDER_STATUS_CONFIRMED]: 'CONFIRMED',
  [OrderStatus.ORDER_STATUS_CANCELLED]: 'CANCELLED',
};

const PAYMENT_STATUS: Partial<Record<PaymentStatus, PaymentBook['status']>> = {
  [PaymentStatus.PAYMENT_STATUS_CHARGED]: 'CHARGED',
  [PaymentStatus.PAYMENT_STATUS_REFUNDED]: 'REFUNDED',
  [PaymentStatus.PAYMENT_STATUS_DECLINED]: 'DECLINED',
};

const RESERVATION_STATUS: Partial<Record<ReservationStatus, ReservationBook['status']>> = {
  [ReservationStatus.RESERVATION_STATUS_HELD]: 'HELD',
  [ReservationStatus.RESERVATION_STATUS_COMMITTED]: 'COMMITTED',
  [ReservationStatus.RESERVATION_STATUS_RELEASED]: 'RELEASED',
};

/**
 * A status this gateway does not know (a newer participant) is not silently read as "none": it
 * would hide a charge or a sale. The read fails instead, naming it.
 */
function known<S extends number, T>(
  map: Partial<Record<S, T>>,
  value: S,
  none: S,
  what: string,
  participant: ParticipantName,
): T | undefined {
  if (value === none) return undefined;
  const v = map[value];
  if (v === undefined)
    throw new BooksReadError(
      'participant_error',
      participant,
      `the ${participant} service listed an unknown ${what} (${value})`,
    );
  return v;
}

export function orderBookOf(e: OrderEntry): OrderBook {
  const o = e.order;
  return {
    orderId: e.orderId,
    status: o
      ? known(ORDER_STATUS, o.status, OrderStatus.ORDER_STATUS_UNSPECIFIED, 'order status', 'order')
      : undefined,
    customerId: o?.customerId ?? '',
    totalCents: o?.totalCents ?? 0,
    lines: (o?.items ?? []).map((i) => ({
      productId: i.productId,
      quantity: i.quantity,
      unitPriceCents: i.unitPriceCents,
    })),
    reason: o?.reason ?? '',
    tombstoned: e.tombstoned,
  };
}

export function paymentBookOf(e: PaymentEntry): PaymentBook {
  return {
    orderId: e.orderId,
    status: known(PAYMENT_STATUS, e.status, PaymentStatus.PAYMENT_STATUS_NONE, 'payment status', 'payment'),
    amountCents: e.amountCents,
    refundedCents: e.refundedCents,
    tombstoned: e.tombstoned,
  };
}

export function reservationBookOf(e: ReservationEntry): ReservationBook {
  return {
    orderId: e.orderId,
    status: known(
      RESERVATION_STATUS,
      e.status,
      ReservationStatus.RESERVATION_STATUS_NONE,
      'reservation status',
      'inventory',
    ),
    lines: e.items.map((i) => ({ productId: i.productId, quantity: i.quantity })),
    tombstoned: e.tombstoned,
  };
}

function productBookOf(p: Product): ProductBook {
  return { productId: p.productId, available: p.available, reserved: p.reserved, sold: p.sold, total: p.total };
}

/** The books of `p`'s participants, each read under `timeoutMs` a page. */
export function grpcParticipantBooks(p: ParticipantClients, timeoutMs: number): ParticipantBooks {
  const read = async <T>(participant: ParticipantName, call: () => Promise<T>): Promise<T> => {
    try {
      return await call();
    } catch (err) {
      if (err instanceof BooksReadError) throw err;
      throw readFailed(err, participant);
    }
  };
  return {
    orders: (pageToken, pageSize) =>
      read('order', async () => {
        const res = await callRpc(p.order, 'listOrders', { pageToken, pageSize }, { timeoutMs });
        return { entries: res.entries.map(orderBookOf), nextPageToken: res.nextPageToken };
      }),
    payments: (pageToken, pageSize) =>
      read('payment', async () => {
        const res = await callRpc(p.payment, 'listPayments', { pageToken, pageSize }, { timeoutMs });
        return { entries: res.entries.map(paymentBookOf), nextPageToken: res.nextPageToken };
      }),
    reservations: (pageToken, pageSize) =>
      read('inventory', async () => {
        const res = await callRpc(p.inventory, 'listReservations', { pageToken, pageSize }, { timeoutMs });
        return { entries: res.entries.map(reservationBookOf), nextPageToken: res.nextPageToken };
      }),
    products: () =>
      read('inventory', async () =>
        (await callRpc(p.inventory, 'listProducts', { productIds: [] }, { timeoutMs })).products.map(productBookOf),
      ),
  };
}
