import { isOrderId } from '../../contracts/ids.js';
import { LIMITS } from '../../contracts/limits.js';
import { invalid } from './validate.js';

/**
 * Keyset paging of a participant's books by order id (ListOrders, ListPayments,
 * ListReservations): a page is the next `size` order ids after the last one the caller saw, so
 * a page never skips or repeats an id however many are written meanwhile, and costs one index
 * range scan however deep into the books it is.
 */

const { listPageSizeDefault: PAGE_SIZE_DEFAULT, listPageSizeMax: PAGE_SIZE_MAX } = LIMITS;

export interface PageRequest {
  pageSize: number;
  pageToken: string;
}

export interface Page {
  /** The last order id of the previous page; '' for the first page (every order id is longer). */
  after: string;
  size: number;
}

// A version prefix: a token of another shape (or a forged one) is recognised as not ours.
const TOKEN_PREFIX = 'o1:';

/** The page a request asks for; INVALID_ARGUMENT naming the field for a bad size or token. */
export function readPage(req: PageRequest): Page {
  const { pageSize, pageToken } = req;
  if (!Number.isSafeInteger(pageSize) || pageSize < 0 || pageSize > PAGE_SIZE_MAX) {
    throw invalid(
      'page_size',
      `must be an integer from 1 to ${PAGE_SIZE_MAX} (0: ${PAGE_SIZE_DEFAULT}), got ${pageSize}`,
    );
  }
  const size = pageSize === 0 ? PAGE_SIZE_DEFAULT : pageSize;
  if (pageToken === '') return { after: '', size };
  const decoded = /^[A-Za-z0-9_-]{1,200}$/.test(pageToken) ? Buffer.from(pageToken, 'base64url').toString() : '';
  const after = decoded.startsWith(TOKEN_PREFIX) ? decoded.slice(TOKEN_PREFIX.length) : '';
  if (!isOrderId(after))
    throw invalid('page_token', 'is not one this service gave out (ask again without it to start from the first page)');
  return { after, size };
}

/**
 * The token of the page after `rows` (asked with one row more than the page's size, so that a
 * full last page is known to be the last): '' when there is none. Returns the page's rows too.
 */
export function pageOf<T>(
  rows: readonly T[],
  page: Page,
  idOf: (row: T) => string,
): { rows: T[]; nextPageToken: string } {
  if (rows.length <= page.size) return { rows: [...rows], nextPageToken: '' };
  const kept = rows.slice(0, page.size);
  const last = kept.at(-1) as T;
  return { rows: kept, nextPageToken: Buffer.from(`${TOKEN_PREFIX}${idOf(last)}`).toString('base64url') };
}

/**
 * One List RPC's answer: the page `req` asks for, read from `list` (the store's rows after an id,
 * at most a limit), each row as its entry, and the next page's token.
 */
export async function listPage<R, E>(
  req: PageRequest,
  list: (after: string, limit: number) => Promise<readonly R[]>,
  idOf: (row: R) => string,
  entryOf: (row: R) => E,
): Promise<{ entries: E[]; nextPageToken: string }> {
  const page = readPage(req);
  const { rows, nextPageToken } = pageOf(await list(page.after, page.size + 1), page, idOf);
  return { entries: rows.map(entryOf), nextPageToken };
}

/**
 * The SQL of one page of order ids over a records table and the tombstones table (both keyed by
 * order id), each side limited first so that SQLite reads at most `size + 1` index entries of
 * each. Parameters: `@after`, `@limit` (size + 1). Its PostgreSQL twin: pgPageIdsSql (postgres.ts).
 */
export function pageIdsSql(table: string, idColumn: string): string {
  return `
    SELECT order_id FROM (
      SELECT * FROM (SELECT ${idColumn} AS order_id FROM ${table} WHERE ${idColumn} > @after ORDER BY ${idColumn} LIMIT @limit)
      UNION
      SELECT * FROM (SELECT order_id FROM tombstones WHERE order_id > @after ORDER BY order_id LIMIT @limit)
    ) ORDER BY order_id LIMIT @limit`;
}
