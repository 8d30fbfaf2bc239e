// Versions (#/versions): every version of each saga definition this gateway registers or that has
// sagas in flight, with their counts and what this gateway makes of each (GET /api/versions), and
// the migration form: a dry run (any role) lists what would move and what could not, with the
// server's reasons; an operator may then migrate, after confirming what the dry run said.
import { api } from './api.js';
import { h, mainView, setOptions, table } from './dom.js';
import { tick } from './poll.js';
import { isCurrent, isOperator, state } from './state.js';

/** A version's state in words (`sagas versions` says the same). */
export function stateWords(v) {
  if (v.state === 'driven') return 'driven here';
  if (v.state === 'left_to_others') return 'left to other gateways';
  if (v.state === 'removed') return v.in_flight > 0 ? `removed here: ${v.in_flight} sagas stranded` : 'removed here';
  return String(v.state);
}

const OUTCOME_WORDS = { moved: 'moved', would_move: 'would move', stay: 'stays', changed: 'changed meanwhile' };

/** A fresh id for one confirmed migration: the same request again moves no saga twice. */
function newActionId() {
  const b = new Uint8Array(12);
  crypto.getRandomValues(b);
  return `migrate_ui-${Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')}`;
}

export function versionsView(token) {
  const tbody = h('tbody', { 'data-testid': 'version-rows' });
  const empty = h(
    'p',
    { class: 'muted', 'data-testid': 'versions-empty', hidden: true },
    'No saga definition is registered, and none has sagas in flight.',
  );
  const form = migrateForm();
  mainView().replaceChildren(
    h(
      'section',
      { 'data-testid': 'versions-view' },
      h('h1', {}, 'Versions'),
      h(
        'p',
        { class: 'muted' },
        'Each saga runs to its end on the version it started on. A version this gateway does not register is driven by the gateways that do (a rolling upgrade); sagas can be moved to another version explicitly, below.',
      ),
      h(
        'div',
        { class: 'table-wrap' },
        table(
          { class: 'list', 'data-testid': 'versions-table' },
          'Versions of each saga definition, with their sagas in flight',
          ['Definition', 'Version', 'State', 'New sagas', 'Running', 'Compensating', 'Parked'],
          tbody,
        ),
      ),
      empty,
      form.el,
    ),
  );
  let shown = '';
  return async () => {
    const body = await api('GET', '/api/versions');
    if (!isCurrent(token)) return;
    form.setVersions(body.versions);
    empty.hidden = body.versions.length > 0;
    const sig = JSON.stringify(body.versions);
    if (sig === shown) return;
    shown = sig;
    tbody.replaceChildren(...body.versions.map(versionRow));
  };
}

function versionRow(v) {
  const cell = (label, testid, value) => h('td', { 'data-label': label, 'data-testid': testid }, value);
  return h(
    'tr',
    {
      'data-testid': 'version-row',
      'data-ref': `${v.definition}@${v.version}`,
      'data-state': v.state,
      class: v.state === 'removed' && v.in_flight > 0 ? 'error' : null,
    },
    h('td', { 'data-label': 'Definition', class: 'mono' }, v.definition),
    cell('Version', 'version-number', `v${v.version}`),
    cell('State', 'version-state', stateWords(v)),
    cell('New sagas', 'version-starts', v.starts_here ? 'start here' : '–'),
    cell('Running', 'version-running', v.running),
    cell('Compensating', 'version-compensating', v.compensating),
    cell('Parked', 'version-parked', v.parked),
  );
}

/** The migration form, built once (what is typed survives the live refresh). */
function migrateForm() {
  const field = (id, label, input) => h('div', { class: 'field' }, h('label', { for: id }, label), input);
  const definition = h('select', { id: 'migrate-definition', 'data-testid': 'migrate-definition' });
  const number = (id) =>
    h('input', { id, type: 'number', min: 1, step: 1, inputmode: 'numeric', required: true, 'data-testid': id });
  const from = number('migrate-from');
  const to = number('migrate-to');
  const map = h('input', {
    id: 'migrate-map',
    autocomplete: 'off',
    spellcheck: 'false',
    placeholder: 'old_step=new_step, … (optional)',
    'data-testid': 'migrate-map',
  });
  const note = isOperator()
    ? h('input', { id: 'migrate-note', maxlength: 1000, placeholder: 'why (optional)', 'data-testid': 'migrate-note' })
    : null;
  const message = h('p', {
    class: 'action-message',
    role: 'status',
    'aria-live': 'polite',
    'data-testid': 'migrate-message',
  });
  const result = h('div', { 'data-testid': 'migrate-result', hidden: true });
  const dryRun = h('button', { type: 'submit', 'data-testid': 'migrate-dry-run' }, 'Dry run');
  // Viewers get no Migrate button at all: the server would refuse them (403) anyway.
  const migrate = isOperator()
    ? h('button', { type: 'button', class: 'primary', 'data-testid': 'migrate-run' }, 'Migrate…')
    : null;
  const confirmBox = h('div', { class: 'card notice', 'data-testid': 'migrate-confirm-box', hidden: true });
  let busy = false;
  let filled = false;

  const say = (text, kind) => {
    message.className = `action-message${kind ? ` ${kind}` : ''}`;
    message.textContent = text;
  };
  const setBusy = (on) => {
    busy = on;
    for (const b of [dryRun, migrate, ...confirmBox.querySelectorAll('button')]) if (b) b.disabled = on;
  };
  const request = (dry) => {
    const body = { definition: definition.value, from: Number(from.value), to: Number(to.value), dry_run: dry };
    if (map.value.trim()) body.map = map.value.trim();
    if (!dry && note?.value.trim()) body.note = note.value.trim();
    return body;
  };
  const send = async (dry, extra = {}) => {
    setBusy(true);
    say(dry ? 'Planning…' : 'Migrating…');
    try {
      const report = await api('POST', '/api/migrations', { ...request(dry), ...extra });
      say('');
      showReport(result, report);
      return report;
    } catch (err) {
      say(`${dry ? 'Dry run' : 'Migration'} refused: ${err.message}${err.code ? ` (${err.code})` : ''}`, 'error');
      return null;
    } finally {
      setBusy(false);
    }
  };

  const form = h(
    'form',
    {
      class: 'card fault-form',
      'data-testid': 'migrate-form',
      'aria-labelledby': 'migrate-title',
      onsubmit: async (e) => {
        e.preventDefault();
        if (busy) return;
        confirmBox.hidden = true;
        await send(true);
      },
    },
    h('h2', { id: 'migrate-title' }, 'Move sagas to another version'),
    h(
      'p',
      { class: 'muted' },
      'A saga moves only when nothing it has done would be lost or done twice; the others stay, each with the reason. Both versions must be registered here.',
    ),
    h(
      'div',
      { class: 'fault-fields' },
      field('migrate-definition', 'Definition', definition),
      field('migrate-from', 'From version', from),
      field('migrate-to', 'To version', to),
      field('migrate-map', 'Renamed steps', map),
      note ? field('migrate-note', 'Note', note) : null,
    ),
    h('div', { class: 'buttons' }, dryRun, migrate),
    confirmBox,
    message,
    result,
  );

  migrate?.addEventListener('click', async () => {
    if (busy || !form.reportValidity()) return;
    confirmBox.hidden = true;
    const plan = await send(true);
    if (!plan) return;
    if (plan.moved === 0) {
      say('Nothing would move: nothing to migrate.');
      return;
    }
    const ref = `${plan.definition}@${plan.from}`;
    const confirm = h(
      'button',
      { type: 'button', class: 'primary', 'data-testid': 'migrate-confirm' },
      'Confirm migration',
    );
    const cancel = h('button', { type: 'button', 'data-testid': 'migrate-cancel' }, 'Cancel');
    confirmBox.replaceChildren(
      h(
        'p',
        { 'data-testid': 'migrate-question' },
        `Move ${plan.moved} saga(s) of ${ref} to version ${plan.to}? ${plan.stayed} stay on version ${plan.from}. Each moved saga records it in its timeline with your name.`,
      ),
      h('div', { class: 'buttons' }, confirm, cancel),
    );
    confirmBox.hidden = false;
    confirm.focus();
    cancel.addEventListener('click', () => {
      confirmBox.hidden = true;
      say('Not migrated.');
    });
    confirm.addEventListener('click', async () => {
      if (busy) return;
      const done = await send(false, { action_id: newActionId() });
      confirmBox.hidden = true;
      if (done) {
        say(`Migrated: ${done.moved} saga(s) moved to version ${done.to} (action id ${done.action_id}).`, 'ok');
        tick();
      }
    });
  });

  return {
    el: form,
    /** The definitions this gateway drives, and (once) a sensible from/to: oldest to newest driven version. */
    setVersions(versions) {
      const driven = versions.filter((v) => v.state === 'driven');
      const names = [...new Set(driven.map((v) => v.definition))];
      setOptions(
        definition,
        names.map((n) => [n, n]),
      );
      if (filled || driven.length === 0) return;
      filled = true;
      const mine = driven.filter((v) => v.definition === definition.value).map((v) => v.version);
      if (mine.length > 1) {
        from.value = String(Math.min(...mine));
        to.value = String(Math.max(...mine));
      }
    },
  };
}

/** A migration's report: the counts, the stays by code, one row per saga (as many as the server sent). */
function showReport(el, r) {
  const moved = r.dry_run ? 'would move' : 'moved';
  const summary = `${r.dry_run ? 'Dry run' : 'Migration'} of ${r.definition}@${r.from} to version ${r.to}: ${r.scanned} saga(s) in flight looked at; ${r.moved} ${moved}, ${r.stayed} stay.`;
  const codes = Object.entries(r.by_code ?? {}).filter(([, n]) => n > 0);
  const rows = r.items.map((i) =>
    h(
      'tr',
      { 'data-testid': 'migrate-item', 'data-id': i.saga_id, 'data-outcome': i.outcome },
      h(
        'td',
        { 'data-label': 'Saga' },
        h('a', { href: `#/sagas/${encodeURIComponent(i.saga_id)}`, class: 'mono' }, i.saga_id),
      ),
      h('td', { 'data-label': 'Status' }, i.status),
      h(
        'td',
        { 'data-label': 'Outcome', 'data-testid': 'migrate-item-outcome' },
        OUTCOME_WORDS[i.outcome] ?? i.outcome,
      ),
      h(
        'td',
        { 'data-label': 'Step' },
        i.outcome === 'stay' || i.outcome === 'changed'
          ? (i.from_step ?? '–')
          : `${i.from_step ?? 'the end'} → ${i.to_step ?? 'the end'}`,
      ),
      h('td', { 'data-label': 'Why', 'data-testid': 'migrate-item-why' }, itemWhy(i)),
    ),
  );
  // replaceChildren writes a null as the text "null" (h() skips them; it does not).
  el.replaceChildren(
    ...[
      h('p', { 'data-testid': 'migrate-summary' }, summary),
      codes.length
        ? h(
            'ul',
            { 'data-testid': 'migrate-codes' },
            codes.map(([code, n]) => h('li', { 'data-code': code }, `${code}: ${n}`)),
          )
        : null,
      r.items.length
        ? h(
            'div',
            { class: 'table-wrap' },
            table(
              { class: 'list', 'data-testid': 'migrate-items' },
              r.dry_run ? 'What each saga would do' : 'What each saga did',
              ['Saga', 'Status', 'Outcome', 'Step', 'Why'],
              h('tbody', {}, rows),
            ),
          )
        : null,
      r.items_omitted > 0 ? h('p', { class: 'muted' }, `… and ${r.items_omitted} more saga(s), counted above.`) : null,
      r.truncated
        ? h('p', { class: 'muted' }, 'More sagas are in flight past the limit: run it again for them.')
        : null,
    ].filter(Boolean),
  );
  el.hidden = false;
}

function itemWhy(i) {
  if (i.outcome === 'stay') return `${i.code}: ${i.reason ?? ''}`;
  if (i.outcome === 'changed') return i.reason ?? 'it moved on while the migration ran: run it again';
  const parts = [];
  if (i.added?.length) parts.push(`runs ${i.added.join(', ')} for the first time`);
  if (i.replayed?.length) parts.push(`runs ${i.replayed.join(', ')} again (same keys: no second effect)`);
  if (i.unrun?.length) parts.push(`compensates ${i.unrun.join(', ')} it never ran`);
  return parts.join('; ') || '–';
}

/**
 * For a saga's detail: a line saying that this gateway does not register the saga's version (from
 * GET /api/console's `registered_versions`), or null when it does.
 */
export function notRegisteredHere(saga) {
  const here = state.facts?.registered_versions;
  if (!Array.isArray(here) || here.some((r) => r.definition === saga.definition && r.version === saga.version))
    return null;
  const what = `${saga.definition} v${saga.version}`;
  const inFlight = !state.facts.terminal_statuses?.includes(saga.status);
  return h(
    'div',
    { class: 'sub muted', 'data-testid': 'detail-not-here' },
    inFlight ? `driven by another gateway: this one does not have ${what}` : `this gateway does not have ${what}`,
  );
}
