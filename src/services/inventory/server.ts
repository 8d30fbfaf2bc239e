import type { Db } from '../../platform/storage/db.js';
import type { Logger } from '../../platform/telemetry/logger.js';
import { unary } from '../../platform/grpc/grpc.js';
import { createInbox } from '../../platform/storage/inbox.js';
import type { IdempotencyGuard } from '../../platform/storage/idempotency.js';
import {
  CommitOutcome,
  ReleaseOutcome,
  ReserveOutcome,
  commitOutcomeToJSON,
  releaseOutcomeToJSON,
  reserveOutcomeToJSON,
  type CommitRequest,
  type CommitResponse,
  type InventoryServiceServer,
  type ListProductsRequest,
  type ListReservationsRequest,
  type ListReservationsResponse,
  ReservationStatus,
  type ReleaseRequest,
  type ReleaseResponse,
  type ReserveRequest,
  type ReserveResponse,
} from '../../gen/inventory/v1/inventory.js';
import { validateReserve, type Catalog, type ReservationStatus as DomainReservationStatus } from './domain.js';
import { createInventoryStore, type ReserveResult } from './store.js';
import { checkOrderId } from '../shared/validate.js';
import { writeRpcs } from '../shared/write-rpc.js';
import { listPage } from '../shared/paging.js';

export interface InventoryServiceDeps {
  /** The Redis fast path in front of the inbox; the inbox alone is enough for correctness. */
  fastPath?: IdempotencyGuard<unknown>;
  /** An open database with INVENTORY_MIGRATIONS applied (see openInventoryDatabase). */
  db: Db;
  logger: Logger;
  /** Its stock is seeded only if this database was never seeded before; its prices on every start. */
  catalog: Catalog;
  now?: () => number;
}

const RESERVE: Record<ReserveResult['outcome'], ReserveOutcome> = {
  reserved: ReserveOutcome.RESERVE_OUTCOME_RESERVED,
  released: ReserveOutcome.RESERVE_OUTCOME_RELEASED,
  conflict: ReserveOutcome.RESERVE_OUTCOME_CONFLICT,
  unknown_product: ReserveOutcome.RESERVE_OUTCOME_UNKNOWN_PRODUCT,
  insufficient_stock: ReserveOutcome.RESERVE_OUTCOME_INSUFFICIENT_STOCK,
};
const RELEASE: Record<'released' | 'already_committed' | 'nothing_reserved', ReleaseOutcome> = {
  released: ReleaseOutcome.RELEASE_OUTCOME_RELEASED,
  already_committed: ReleaseOutcome.RELEASE_OUTCOME_ALREADY_COMMITTED,
  nothing_reserved: ReleaseOutcome.RELEASE_OUTCOME_NOTHING_RESERVED,
};
const RESERVATION_STATUS: Record<DomainReservationStatus, ReservationStatus> = {
  HELD: ReservationStatus.RESERVATION_STATUS_HELD,
  COMMITTED: ReservationStatus.RESERVATION_STATUS_COMMITTED,
  RELEASED: ReservationStatus.RESERVATION_STATUS_RELEASED,
};
const COMMIT: Record<'committed' | 'not_reserved', CommitOutcome> = {
  committed: CommitOutcome.COMMIT_OUTCOME_COMMITTED,
  not_reserved: CommitOutcome.COMMIT_OUTCOME_NOT_RESERVED,
};

/** The InventoryService implementation. Creating it seeds the catalog on a fresh database. */
export function createInventoryService({
  db,
  logger,
  catalog,
  now = Date.now,
  fastPath,
}: InventoryServiceDeps): InventoryServiceServer {
  const store = createInventoryStore(db, { catalog, now });
  const write = writeRpcs('inventory', logger, createInbox(db, now, fastPath));

  return {
    reserve: write('Reserve', 'reserve', {
      validate: (req: ReserveRequest) => validateReserve(req),
      effect: (input): ReserveResponse => {
        const result = store.reserve(input);
        return { outcome: RESERVE[result.outcome], productIds: result.productIds };
      },
      log: (input, res) => ({
        msg: 'reserve stock',
        level: res.outcome === ReserveOutcome.RESERVE_OUTCOME_CONFLICT ? 'warn' : 'info',
        order_id: input.orderId,
        outcome: reserveOutcomeToJSON(res.outcome),
        product_ids: res.productIds,
      }),
    }),

    release: write('Release', 'release', {
      validate: (req: ReleaseRequest) => checkOrderId(req.orderId),
      effect: (orderId): ReleaseResponse => ({ outcome: RELEASE[store.release(orderId).outcome] }),
      log: (orderId, res) => ({ msg: 'release stock', order_id: orderId, outcome: releaseOutcomeToJSON(res.outcome) }),
    }),

    commit: write('Commit', 'commit', {
      validate: (req: CommitRequest) => checkOrderId(req.orderId),
      effect: (orderId): CommitResponse => ({ outcome: COMMIT[store.commit(orderId).outcome] }),
      log: (orderId, res) => ({ msg: 'commit stock', order_id: orderId, outcome: commitOutcomeToJSON(res.outcome) }),
    }),

    listProducts: unary('ListProducts', logger, (req: ListProductsRequest, call) => {
      const products = store.listProducts(req.productIds);
      call.logger.debug({ count: products.length }, 'list products');
      return { products };
    }),

    listReservations: unary(
      'ListReservations',
      logger,
      (req: ListReservationsRequest, call): ListReservationsResponse => {
        const res = listPage(
          req,
          store.listReservations,
          (e) => e.orderId,
          ({ orderId, reservation, tombstoned }) => ({
            orderId,
            status: reservation ? RESERVATION_STATUS[reservation.status] : ReservationStatus.RESERVATION_STATUS_NONE,
            items: reservation?.lines.map((l) => ({ productId: l.productId, quantity: l.quantity })) ?? [],
            tombstoned,
          }),
        );
        call.logger.debug({ count: res.entries.length, more: res.nextPageToken !== '' }, 'list reservations');
        return res;
      },
    ),
  };
}
