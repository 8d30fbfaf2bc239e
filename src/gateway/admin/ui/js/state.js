// The console's mutable state, all of it: who is signed in, what the server said the engine's
// facts are, the list's filters, the view on screen and the poller. Other modules keep only what
// belongs to one view instance (inside the view's closure), never module-level variables.

export const state = {
  /** @type {{name: string, role: string, via: 'session' | 'bearer' | 'loopback', faults: boolean} | null} */
  session: null,
  /**
   * GET /api/console: the statuses, terminal statuses, operator actions and longest note.
   * @type {{statuses: string[], terminal_statuses: string[], actions: string[], note_max_length: number} | null}
   */
  facts: null,
  /** The CSRF token this tab last sent (or got from its sign-in); see api.js. */
  csrf: null,
  /** The list's filter and page survive navigation to a detail and back. */
  list: { status: '', q: '', customer: '', step: '', from: '', to: '', stuck: false, cursor: null, prev: [], page: 1 },
  /** The view on screen: its refresh, and a token that turns stale answers away. */
  view: { token: 0, refresh: async () => {} },
  /** The polling loop: its timer, whether a round runs, and whether another was asked meanwhile. */
  poll: { timer: 0, running: false, again: false, round: Promise.resolve() },
};

export const isOperator = () => state.session?.role === 'operator';

/** Whether an answer asked for by the view of `token` may still change the page. */
export const isCurrent = (token) => token === state.view.token;

/** A new view takes the screen: answers for the one before are turned away. */
export function nextView(refresh = async () => {}) {
  state.view = { token: state.view.token + 1, refresh };
  return state.view.token;
}

/** Back to the list's first page (a filter changed). */
export function resetPage() {
  state.list.cursor = null;
  state.list.prev = [];
  state.list.page = 1;
}
