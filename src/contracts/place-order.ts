/**
 * The name the place-order saga is registered under (src/gateway/place-order.ts): the sagas of
 * this name carry an order as their input, which `sagas reconcile` reads (src/reconcile/books.ts).
 */
export const PLACE_ORDER = 'place_order';
