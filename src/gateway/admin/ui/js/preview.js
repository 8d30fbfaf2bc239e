// What an operator action would do, shown before it is sent: the engine's preview
// (GET /api/sagas/:id/preview, previewAction), never the page's guess. The summary, then each call
// it leads to, marked will (follows for certain) or may (only on the outcome named), and for
// resolve what the saga leaves half-done. Values as text only (dom.js).
import { api } from './api.js';
import { h } from './dom.js';

/** The preview of `action` on saga `id`, as the API answers it. Throws the API's refusal (e.g. 404). */
export function fetchPreview(id, action) {
  return api('GET', `/api/sagas/${encodeURIComponent(id)}/preview?action=${encodeURIComponent(action)}`);
}

const STATE_LABEL = { done: 'done, not undone', unknown: 'may have taken effect', pending: 'not run' };

function effectItem(e) {
  const undo = e.phase === 'compensation' ? ' (undo)' : '';
  return h(
    'li',
    {
      class: `effect ${e.certainty}`,
      'data-testid': 'preview-effect',
      'data-certainty': e.certainty,
      'data-step': e.step,
    },
    h('span', { class: `badge certainty-${e.certainty}`, 'data-testid': 'preview-certainty' }, e.certainty),
    ' ',
    h('span', { class: 'mono' }, `${e.step}${undo}`),
    e.condition ? h('span', { class: 'muted' }, ` ${e.condition}:`) : ':',
    ' ',
    h('span', { 'data-testid': 'preview-words' }, e.effect?.words ?? ''),
  );
}

function halfDoneItem(x) {
  const undo = x.phase === 'compensation' ? ' (undo)' : '';
  return h(
    'li',
    { 'data-testid': 'preview-half-done', 'data-state': x.state },
    h('span', { class: 'mono' }, `${x.step}${undo}`),
    ` ${STATE_LABEL[x.state] ?? x.state}: `,
    x.effect?.words ?? '',
  );
}

/**
 * The confirmation box's content for a preview `p`: its summary, its calls and (resolve) what is
 * left half-done. Whether the action may be confirmed is `p.allowed`: the caller decides on it.
 */
export function previewContent(p) {
  const effects = Array.isArray(p.effects) ? p.effects : [];
  const left = Array.isArray(p.half_done) ? p.half_done : [];
  return [
    h('p', { class: 'preview-summary', 'data-testid': 'preview-summary' }, p.summary ?? ''),
    effects.length
      ? h('ul', { class: 'preview-effects', 'data-testid': 'preview-effects' }, effects.map(effectItem))
      : null,
    left.length
      ? h(
          'div',
          {},
          h('p', { class: 'muted' }, 'Left half-done (say in the note what you repaired):'),
          h('ul', { class: 'preview-half-done' }, left.map(halfDoneItem)),
        )
      : null,
  ];
}
