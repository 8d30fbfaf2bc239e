// "Why hasn't this order moved?" on a saga's page: what it waits for and until when, in one
// sentence and its parts (attempt, participant and failure, since, next attempt, deadline), and
// whether it is stuck (no progress for longer than SAGA_STUCK_AFTER). From GET /api/sagas/<id>/waiting.
import { api } from './api.js';
import { h } from './dom.js';
import { fmtAge, fmtTime } from './format.js';
import { isCurrent } from './state.js';

const KIND_WORDS = {
  unreachable: 'unreachable',
  timeout: 'not answering in time',
  overloaded: 'overloaded',
  interrupted: 'interrupting calls',
  error: 'answering with errors',
  refused: 'refusing',
  injected: 'failing (an injected fault)',
  unknown: 'failing',
};

/** The panel: `el` to place on the page, `refresh()` every poll round (stuck changes with time alone). */
export function waitingPanel(id, token) {
  const el = h('section', { class: 'waiting card', 'data-testid': 'waiting', hidden: true });
  let shown = '';
  return {
    el,
    async refresh(status) {
      // A finished saga waits for nothing: no request.
      if (!['RUNNING', 'COMPENSATING', 'PARKED'].includes(status)) {
        el.hidden = true;
        return;
      }
      const answer = await api('GET', `/api/sagas/${encodeURIComponent(id)}/waiting`).catch(() => null);
      if (!isCurrent(token)) return;
      const w = answer?.waiting ?? null;
      const sig = JSON.stringify(w);
      if (sig === shown) return;
      shown = sig;
      el.hidden = !w;
      if (w) render(el, w);
    },
  };
}

function render(el, w) {
  const fact = (label, testid, ...value) => [h('dt', {}, label), h('dd', { 'data-testid': testid }, ...value)];
  const call = w.participant ? `${w.participant} service${w.method ? ` (${w.method})` : ''}` : '–';
  const err = w.last_error;
  const participant = err ? `${call}: ${KIND_WORDS[err.kind] ?? err.kind}${err.code ? ` (${err.code})` : ''}` : call;
  const step = w.step ? `${w.phase === 'compensation' ? 'undoing ' : ''}${w.step}` : '–';
  el.dataset.state = w.state;
  el.dataset.stuck = String(w.stuck);
  el.replaceChildren(
    h(
      'h2',
      {},
      w.state === 'parked' ? 'Waiting for an operator' : 'Waiting for',
      ' ',
      w.stuck
        ? h(
            'span',
            { class: 'badge stuck', 'data-testid': 'waiting-stuck', title: `threshold ${w.stuck_after_seconds} s` },
            `stuck: no progress for ${fmtAge(w.progress_age_seconds)}`,
          )
        : null,
    ),
    h('p', { class: 'sentence', 'data-testid': 'waiting-sentence' }, w.sentence),
    h(
      'dl',
      { class: 'facts' },
      ...fact('Step', 'waiting-step', step),
      ...fact(
        'Attempt',
        'waiting-attempt',
        w.max_attempts === null ? String(w.attempt) : `${w.attempt} of ${w.max_attempts}`,
      ),
      ...fact('Participant', 'waiting-participant', participant),
      ...fact('Since', 'waiting-since', w.since ? fmtTime(w.since) : '–'),
      ...fact(
        'Next attempt',
        'waiting-next',
        w.next_attempt_at ? h('time', { datetime: w.next_attempt_at }, fmtTime(w.next_attempt_at)) : '–',
      ),
      ...fact(
        'Deadline',
        'waiting-deadline',
        w.deadline_at
          ? h('time', { datetime: w.deadline_at }, fmtTime(w.deadline_at))
          : w.forward_only
            ? `none after the pivot; parks after attempt ${w.max_attempts}`
            : w.phase === 'compensation'
              ? `none while compensating; parks after attempt ${w.max_attempts}`
              : '–',
      ),
      ...fact('Last progress', 'waiting-progress', `${fmtTime(w.progress_at)} (${fmtAge(w.progress_age_seconds)} ago)`),
    ),
  );
}
