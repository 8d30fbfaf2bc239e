// Stock (#/stock): available, reserved and sold per product, as the inventory reports them.
import { api } from './api.js';
import { h, mainView, table } from './dom.js';
import { isCurrent } from './state.js';

export function stockView(token) {
  const tbody = h('tbody', { 'data-testid': 'stock-rows' });
  mainView().replaceChildren(
    h(
      'section',
      { 'data-testid': 'stock-view' },
      h('h1', {}, 'Stock'),
      h(
        'div',
        { class: 'table-wrap' },
        table(
          { class: 'list numeric', 'data-testid': 'stock-table' },
          'Stock per product',
          ['Product', 'Available', 'Reserved', 'Sold', 'Price'],
          tbody,
        ),
      ),
    ),
  );
  let shown = '';
  return async () => {
    const body = await api('GET', '/api/stock');
    if (!isCurrent(token)) return;
    const sig = JSON.stringify(body.products);
    if (sig === shown) return;
    shown = sig;
    tbody.replaceChildren(...body.products.map(stockRow));
  };
}

function stockRow(p) {
  return h(
    'tr',
    { 'data-testid': 'stock-row', 'data-product': p.product_id },
    h('td', { 'data-label': 'Product', class: 'mono' }, p.product_id),
    h('td', { 'data-label': 'Available', 'data-testid': 'stock-available' }, p.available),
    h('td', { 'data-label': 'Reserved', 'data-testid': 'stock-reserved' }, p.reserved),
    h('td', { 'data-label': 'Sold', 'data-testid': 'stock-sold' }, p.sold ?? '–'),
    h('td', { 'data-label': 'Price' }, typeof p.price === 'number' ? `$${p.price.toFixed(2)}` : '–'),
  );
}
