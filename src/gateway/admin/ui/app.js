// The operator console: a single page over the admin JSON API (/api/*), served by the gateway's
// admin listener. Plain ES modules (js/), no dependencies, no build step, nothing fetched from
// elsewhere. Every value from the API reaches the page as text (textContent, attributes), never
// as HTML. This module starts the page and routes: each view is a module of js/, the one mutable
// state is js/state.js, and what the engine knows (statuses, allowed actions, the fault
// vocabulary, injected failures) comes from the server, never from the page's own lists.
import { CSRF_KEY, announceSignOut, api, forgetCsrf } from './js/api.js';
import { bulkJobView, bulkView } from './js/bulk.js';
import { detailView } from './js/detail.js';
import { $, h, mainView, showBanner } from './js/dom.js';
import { faultsView } from './js/faults.js';
import { parkedView } from './js/parked.js';
import { pollQuiet, stopPolling, tick } from './js/poll.js';
import { sagasView } from './js/sagas.js';
import { signInView } from './js/sign-in.js';
import { nextView, state } from './js/state.js';
import { stockView } from './js/stock.js';
import { versionsView } from './js/versions.js';

const VIEWS = {
  sagas: sagasView,
  parked: parkedView,
  stock: stockView,
  faults: faultsView,
  versions: versionsView,
  bulk: bulkView,
};

function route() {
  const hash = location.hash.replace(/^#/, '') || '/sagas';
  const m = /^\/sagas\/([^/?#]+)$/.exec(hash);
  if (m) return { name: 'detail', id: decodeURIComponent(m[1]) };
  const b = /^\/bulk\/([^/?#]+)$/.exec(hash);
  if (b) return { name: 'bulk-job', id: decodeURIComponent(b[1]) };
  for (const name of ['parked', 'stock', 'faults', 'versions', 'bulk'])
    if (hash.startsWith(`/${name}`)) return { name };
  return { name: 'sagas' };
}

function render() {
  if (!state.session) return;
  const r = route();
  for (const a of document.querySelectorAll('[data-nav]')) {
    const nav = r.name === 'detail' ? 'sagas' : r.name === 'bulk-job' ? 'bulk' : r.name;
    if (a.dataset.nav === nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  showBanner('');
  const token = nextView();
  state.view.refresh =
    r.name === 'detail'
      ? detailView(r.id, token)
      : r.name === 'bulk-job'
        ? bulkJobView(r.id, token)
        : VIEWS[r.name](token);
  tick();
}

function showChrome(on) {
  for (const id of ['nav', 'who', 'overview']) $(`[data-testid="${id}"]`).hidden = !on;
  // The Faults link shows when the gateway has a switchboard (the session says so).
  $('[data-testid="nav-faults"]').hidden = !(on && state.session?.faults);
  if (on && state.session) {
    $('[data-testid="who-name"]').textContent = state.session.name;
    $('[data-testid="who-role"]').textContent = state.session.role;
    // No session cookie (a loopback operator when the gateway has no ADMIN_TOKENS): nothing to sign out of.
    $('[data-testid="sign-out"]').hidden = state.session.via !== 'session';
  }
}

function signedOut(message = '') {
  state.session = null;
  forgetCsrf();
  stopPolling();
  showChrome(false);
  showBanner('');
  signInView(message, started);
}

/** Signed in: the engine's facts once (statuses, actions, the longest note), then the view. */
async function started() {
  state.facts = await api('GET', '/api/console');
  showChrome(true);
  render();
}

function cannotStart(err) {
  const text = `The console cannot start: ${err.message}`;
  mainView().replaceChildren(h('p', { class: 'error', role: 'alert', 'data-testid': 'boot-error' }, text));
}

async function boot() {
  try {
    state.session = await api('GET', '/api/session');
  } catch (err) {
    if (err.status === 401) return signedOut();
    if (err.code === 'csrf_rejected') return signedOut('Sign in again to continue.');
    return cannotStart(err);
  }
  // A session that ended meanwhile has shown the sign-in already (js/api.js).
  await started().catch((err) => state.session && cannotStart(err));
}

// A request found the session gone (js/api.js).
window.addEventListener('console:signed-out', (e) => signedOut(e.detail));

// Another tab signed in or out: its cookie is this tab's too, so start again with it.
window.addEventListener('storage', (e) => {
  // The token gone: another tab is signing out (or its session ended). Stop here at once, without
  // asking the server, whose session may still be there for a moment.
  if (e.key === CSRF_KEY && e.newValue === null) return signedOut();
  if (e.key === CSRF_KEY || e.key === null) boot();
});

$('[data-testid="sign-out"]').addEventListener('click', async () => {
  // No round may start, or still be asking, once the session is gone: tick() needs a session.
  state.session = null;
  await pollQuiet();
  announceSignOut();
  try {
    await api('DELETE', '/api/session');
  } catch {
    /* signed out either way */
  }
  signedOut();
});

document.addEventListener('visibilitychange', () => {
  if (!document.hidden && state.session) tick();
});

window.addEventListener('hashchange', () => {
  render();
  mainView().focus({ preventScroll: true });
});

boot();
