import type { Db } from '../../platform/db.js';
import type { Logger } from '../../platform/logger.js';
import { unary } from '../../platform/grpc.js';
import { createInbox } from '../../platform/inbox.js';
import type { IdempotencyGuard } from '../../platform/idempotency.js';
import { crashPoint } from '../../platform/crash.js';
import {
  CommitOutcome,
  ReleaseOutcome,
  ReserveOutcome,
  commitOutcomeToJSON,
  releaseOutcomeToJSON,
  reserveOutcomeToJSON,
  type CommitResponse,
  type InventoryServiceServer,
  type ReleaseResponse,
  type ReserveResponse,
} from '../../gen/inventory/v1/inventory.js';
import { validateReserve, type Catalog } from './domain.js';
import { createInventoryStore, type ReserveResult } from './store.js';
import { checkOrderId } from '../shared/validate.js';

export interface InventoryServiceDeps {
  /** The Redis fast path in front of the inbox; the inbox alone is enough for correctness. */
  fastPath?: IdempotencyGuard<unknown>;
  /** An open database with INVENTORY_MIGRATIONS applied (see openInventoryDatabase). */
  db: Db;
  logger: Logger;
  /** Seeded only if this database was never seeded before. */
  catalog: Catalog;
  now?: () => number;
}

const RESERVE: Record<ReserveResult['outcome'], ReserveOutcome> = {
  reserved: ReserveOutcome.RESERVE_OUTCOME_RESERVED,
  released: ReserveOutcome.RESERVE_OUTCOME_RELEASED,
  unknown_product: ReserveOutcome.RESERVE_OUTCOME_UNKNOWN_PRODUCT,
  insufficient_stock: ReserveOutcome.RESERVE_OUTCOME_INSUFFICIENT_STOCK,
};
const RELEASE: Record<'released' | 'already_committed' | 'nothing_reserved', ReleaseOutcome> = {
  released: ReleaseOutcome.RELEASE_OUTCOME_RELEASED,
  already_committed: ReleaseOutcome.RELEASE_OUTCOME_ALREADY_COMMITTED,
  nothing_reserved: ReleaseOutcome.RELEASE_OUTCOME_NOTHING_RESERVED,
};
const COMMIT: Record<'committed' | 'not_reserved', CommitOutcome> = {
  committed: CommitOutcome.COMMIT_OUTCOME_COMMITTED,
  not_reserved: CommitOutcome.COMMIT_OUTCOME_NOT_RESERVED,
};

/** The InventoryService implementation. Creating it seeds the catalog on a fresh database. */
export function createInventoryService({ db, logger, catalog, now = Date.now, fastPath }: InventoryServiceDeps): InventoryServiceServer {
  const store = createInventoryStore(db, { catalog, now });
  const inbox = createInbox(db, now, fastPath);

  return {
    reserve: unary('Reserve', logger, async (req, call) => {
      const input = validateReserve(req);
      const { response, replayed } = await inbox.run(call.idempotencyKey, 'Reserve', req, (): ReserveResponse => {
        const result = store.reserve(input);
        crashPoint('inventory.reserve.before_commit');
        return { outcome: RESERVE[result.outcome], productIds: result.productIds };
      });
      crashPoint('inventory.reserve.after_commit');
      call.logger.info(
        {
          order_id: input.orderId,
          outcome: reserveOutcomeToJSON(response.outcome),
          product_ids: response.productIds,
          idempotency_key: call.idempotencyKey,
          replayed,
        },
        'reserve stock',
      );
      return response;
    }),

    release: unary('Release', logger, async (req, call) => {
      const orderId = checkOrderId(req.orderId);
      const { response, replayed } = await inbox.run(call.idempotencyKey, 'Release', req, (): ReleaseResponse => {
        const result = store.release(orderId);
        crashPoint('inventory.release.before_commit');
        return { outcome: RELEASE[result.outcome] };
      });
      crashPoint('inventory.release.after_commit');
      call.logger.info(
        { order_id: orderId, outcome: releaseOutcomeToJSON(response.outcome), idempotency_key: call.idempotencyKey, replayed },
        'release stock',
      );
      return response;
    }),

    commit: unary('Commit', logger, async (req, call) => {
      const orderId = checkOrderId(req.orderId);
      const { response, replayed } = await inbox.run(call.idempotencyKey, 'Commit', req, (): CommitResponse => {
        const result = store.commit(orderId);
        crashPoint('inventory.commit.before_commit');
        return { outcome: COMMIT[result.outcome] };
      });
      crashPoint('inventory.commit.after_commit');
      call.logger.info(
        { order_id: orderId, outcome: commitOutcomeToJSON(response.outcome), idempotency_key: call.idempotencyKey, replayed },
        'commit stock',
      );
      return response;
    }),

    listProducts: unary('ListProducts', logger, (_req, call) => {
      const products = store.listProducts();
      call.logger.debug({ count: products.length }, 'list products');
      return { products };
    }),
  };
}
