import type { Db } from '../../platform/storage/db.js';
import type { Logger } from '../../platform/telemetry/logger.js';
import { unary } from '../../platform/grpc/grpc.js';
import { inboxOver } from '../../platform/storage/inbox.js';
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
import { sqliteInventoryStore } from './store.js';
import type { InventoryStorePort, ReserveResult } from './store-port.js';
import { checkOrderId } from '../shared/validate.js';
import { writeRpcs } from '../shared/write-rpc.js';
import { listPage } from '../shared/paging.js';

export type InventoryServiceDeps = {
  /** The Redis fast path in front of the inbox; the inbox alone is enough for correctness. */
  fastPath?: IdempotencyGuard<unknown>;
  logger: Logger;
  now?: () => number;
} & (
  | {
      /** The store, its catalog applied: SQLite (sqliteInventoryStore) or PostgreSQL (openPostgresInventoryStore). */
      store: InventoryStorePort;
      db?: undefined;
      catalog?: undefined;
    }
  | {
      /** An open SQLite database with INVENTORY_MIGRATIONS applied (see openInventoryDatabase): its store. */
      db: Db;
      /** Its stock is seeded only if this database was never seeded before; its prices on every start. */
      catalog: Catalog;
      store?: undefined;
    }
);

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

/** The InventoryService implementation. Created on a SQLite database, it seeds the catalog on a fresh one. */
export function createInventoryService(deps: InventoryServiceDeps): InventoryServiceServer {
  const { logger, now = Date.now, fastPath } = deps;
  const store = deps.store ?? sqliteInventoryStore(deps.db, { catalog: deps.catalog, now });
  const write = writeRpcs('inventory', logger, inboxOver(store.inbox, fastPath));

  return {
    reserve: write('Reserve', 'reserve', {
      validate: (req: ReserveRequest) => validateReserve(req),
      effect: (tx, input) => tx.reserve(input),
      answer: (result): ReserveResponse => ({ outcome: RESERVE[result.outcome], productIds: result.productIds }),
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
      effect: (tx, orderId) => tx.release(orderId),
      answer: (result): ReleaseResponse => ({ outcome: RELEASE[result.outcome] }),
      log: (orderId, res) => ({ msg: 'release stock', order_id: orderId, outcome: releaseOutcomeToJSON(res.outcome) }),
    }),

    commit: write('Commit', 'commit', {
      validate: (req: CommitRequest) => checkOrderId(req.orderId),
      effect: (tx, orderId) => tx.commit(orderId),
      answer: (result): CommitResponse => ({ outcome: COMMIT[result.outcome] }),
      log: (orderId, res) => ({ msg: 'commit stock', order_id: orderId, outcome: commitOutcomeToJSON(res.outcome) }),
    }),

    listProducts: unary('ListProducts', logger, async (req: ListProductsRequest, call) => {
      const products = await store.listProducts(req.productIds);
      call.logger.debug({ count: products.length }, 'list products');
      return { products };
    }),

    listReservations: unary(
      'ListReservations',
      logger,
      async (req: ListReservationsRequest, call): Promise<ListReservationsResponse> => {
        const res = await listPage(
          req,
          (after, limit) => store.listReservations(after, limit),
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
