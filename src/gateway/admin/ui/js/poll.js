// The live refresh: every POLL_MS the view on screen and the overview strip read the API again.
// A view asks for a round at once with tick() (after a filter changed, or an action).
import { showBanner } from './dom.js';
import { refreshOverview } from './overview.js';
import { state } from './state.js';

const POLL_MS = 1500;

export function stopPolling() {
  clearTimeout(state.poll.timer);
  state.poll.timer = 0;
}

/**
 * Stops the refresh and resolves once no round is under way: what signing out waits for, so that
 * no request of a round reaches the API after the session is gone (it would be refused, 401).
 */
export async function pollQuiet() {
  stopPolling();
  state.poll.again = false;
  while (state.poll.running) await state.poll.round;
}

/** One round: the view's data and the overview strip, then the next round in POLL_MS. */
export async function tick() {
  stopPolling();
  if (!state.session) return;
  if (state.poll.running) {
    // A round is under way (perhaps for the view just left): run another as soon as it ends.
    state.poll.again = true;
    return;
  }
  state.poll.running = true;
  const token = state.view.token;
  let settle;
  state.poll.round = new Promise((resolve) => (settle = resolve));
  try {
    await Promise.all([state.view.refresh(), refreshOverview()]);
    if (token === state.view.token) showBanner('');
  } catch (err) {
    if (state.session && token === state.view.token) showBanner(err.message);
  } finally {
    state.poll.running = false;
    settle();
  }
  if (state.poll.again) {
    state.poll.again = false;
    return tick();
  }
  if (state.session && !document.hidden) state.poll.timer = setTimeout(tick, POLL_MS);
}
