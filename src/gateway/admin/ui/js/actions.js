// The operator's buttons and note for one saga. Only the actions the server says the saga allows
// now (its `allowed_actions`) are shown; the page never decides that itself. A button first shows
// what the action would do (the engine's preview, preview.js); the action is sent on confirming.
import { api } from './api.js';
import { h } from './dom.js';
import { fetchPreview, previewContent } from './preview.js';
import { tick } from './poll.js';
import { state } from './state.js';

const ACTION_LABEL = { retry: 'Retry', compensate: 'Compensate now', resolve: 'Resolve' };

const HELP =
  'Retry: resume a parked saga with a fresh attempt budget. Compensate now: stop going forward and undo (a running saga before its pivot, or a parked one that has not passed it; at the pivot, its fence settles it first). Resolve: close a parked saga repaired by hand. Each button first shows what the action would do (the money and stock it moves); it is sent when you confirm.';

/** A random action id: the same one again is a replay on the server, never a second action. */
function newActionId() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return `ui-${Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')}`;
}

/** Sends `action` on saga `id` with `note`; says how it went. Throws the server's refusal. */
async function send(id, action, note) {
  const body = { action, action_id: newActionId() };
  if (note) body.note = note;
  const r = await api('POST', `/api/sagas/${encodeURIComponent(id)}/actions`, body);
  return `${action} recorded${r?.replayed ? ' (replayed)' : ''}; the saga is ${r?.saga?.status ?? 'updated'}.`;
}

function actionButton(id, action, onclick) {
  return h(
    'button',
    {
      type: 'button',
      class: action === 'resolve' ? '' : 'primary',
      'data-testid': `action-${action}`,
      'data-focus': `action-${action}-${id}`,
      hidden: true,
      disabled: true,
      onclick,
    },
    ACTION_LABEL[action] ?? action,
  );
}

/**
 * Built once per view, so that a note being typed and the keyboard focus survive the live
 * refresh; `update(allowed)` shows the buttons of the allowed actions. `compact` (a row of the
 * PARKED queue): a one-line note, and retry and resolve only (room), when allowed.
 */
export function actionPanel(id, { compact = false } = {}) {
  const noteId = `note-${id}`;
  const note = h(compact ? 'input' : 'textarea', {
    id: noteId,
    rows: compact ? null : 2,
    maxlength: state.facts.note_max_length,
    'data-testid': 'action-note',
    placeholder: compact ? 'note (required to resolve)' : null,
  });
  const message = h('p', {
    class: 'action-message',
    role: 'status',
    'aria-live': 'polite',
    'data-testid': 'action-message',
  });
  let allowed = [];
  let busy = false;
  const buttons = {};
  const sync = () => {
    for (const [action, b] of Object.entries(buttons)) {
      b.hidden = !allowed.includes(action);
      b.disabled = busy || b.hidden;
    }
    if (!compact) el.hidden = allowed.length === 0 && !message.textContent;
  };
  const say = (text, kind) => {
    message.className = `action-message${kind ? ` ${kind}` : ''}`;
    message.textContent = text;
  };
  // The confirmation: the preview of the action asked, and its Confirm and Cancel buttons.
  const confirmBox = h('div', {
    class: 'action-preview',
    role: 'group',
    'aria-live': 'polite',
    'data-testid': 'action-preview',
    hidden: true,
  });
  let asked = null;
  const closePreview = () => {
    asked = null;
    confirmBox.hidden = true;
    confirmBox.replaceChildren();
  };
  const ask = async (action) => {
    const label = ACTION_LABEL[action] ?? action;
    asked = action;
    say('');
    confirmBox.dataset.action = action;
    confirmBox.hidden = false;
    confirmBox.replaceChildren(h('p', { class: 'muted' }, `What ${label.toLowerCase()} would do…`));
    let p;
    try {
      p = await fetchPreview(id, action);
    } catch (err) {
      if (asked !== action) return;
      closePreview();
      say(`${action}: no preview (${err.message}${err.code ? `, ${err.code}` : ''}); nothing was sent`, 'error');
      return;
    }
    if (asked !== action) return; // another button was pressed meanwhile
    const confirm = p.allowed
      ? h(
          'button',
          {
            type: 'button',
            class: 'primary',
            'data-testid': 'action-confirm',
            'data-action': action,
            onclick: () => act(action),
          },
          `Confirm: ${label}`,
        )
      : null;
    confirmBox.dataset.allowed = String(Boolean(p.allowed));
    confirmBox.replaceChildren(
      h('h3', {}, p.allowed ? `${label}: what it will do` : `${label} would be refused`),
      ...previewContent(p),
      h(
        'div',
        { class: 'buttons' },
        confirm,
        h('button', { type: 'button', 'data-testid': 'action-cancel', onclick: closePreview }, 'Cancel'),
      ),
    );
    (confirm ?? confirmBox.querySelector('[data-testid="action-cancel"]'))?.focus();
  };
  const act = async (action) => {
    closePreview();
    busy = true;
    sync();
    say(`${ACTION_LABEL[action] ?? action}…`);
    try {
      say(await send(id, action, note.value.trim()), 'ok');
      note.value = '';
      // The saga moved on: what it allows now comes with the next read (tick, below).
      allowed = [];
    } catch (err) {
      say(`${action} refused: ${err.message}${err.code ? ` (${err.code})` : ''}`, 'error');
    } finally {
      busy = false;
      sync();
      tick();
    }
  };
  const shown = compact ? state.facts.actions.filter((a) => a !== 'compensate') : state.facts.actions;
  for (const action of shown) buttons[action] = actionButton(id, action, () => ask(action));
  const el = h(
    'div',
    { class: compact ? 'actions compact' : 'card actions', 'data-testid': 'actions', hidden: !compact },
    compact ? null : h('h2', {}, 'Actions'),
    h(
      'label',
      { for: noteId, class: compact ? 'sr-only' : '' },
      compact ? `Note for ${id}` : 'Note (required to resolve; recorded with the action)',
    ),
    note,
    h('div', { class: 'buttons' }, Object.values(buttons)),
    confirmBox,
    message,
    compact ? null : h('p', { class: 'muted' }, HELP),
  );
  return {
    el,
    update(next) {
      allowed = Array.isArray(next) ? next : [];
      sync();
    },
  };
}
