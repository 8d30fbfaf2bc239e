// The admin API (/api/*) as the console calls it: JSON both ways, the session's CSRF token on
// every request, errors as ApiError. A request that finds the session gone dispatches
// `console:signed-out` on window (app.js signs the page out), so no module here imports the views.
import { state } from './state.js';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

// The session's CSRF token: the sign-in's answer is the only one that carries it (a cookie alone
// gets it from nowhere, review N2), and every request signed in by the cookie must send it, reads
// included. It is kept in this origin's localStorage: a reload and the console's other tabs find
// it, the browser never sends it by itself, and no other origin (another port of this host) can
// read it. (Not sessionStorage: a second tab would have to sign in again, and its new cookie
// would orphan the first tab's token.) Sign-out and a 401 forget it.
export const CSRF_KEY = 'sagas-console.csrf';

function storedCsrf() {
  try {
    return localStorage.getItem(CSRF_KEY);
  } catch {
    return null; // storage refused (a privacy setting): the console then works for one page only
  }
}

export function keepCsrf(token) {
  state.csrf = token;
  try {
    localStorage.setItem(CSRF_KEY, token);
  } catch {
    /* kept in the page only */
  }
}

/**
 * Takes the token out of the shared storage but keeps it in this page, for the sign-out's own
 * request: the other tabs hear it go and stop asking before the session is gone (a request of
 * theirs after it would be refused, 401).
 */
export function announceSignOut() {
  state.csrf ??= storedCsrf();
  try {
    if (localStorage.getItem(CSRF_KEY) === state.csrf) localStorage.removeItem(CSRF_KEY);
  } catch {
    /* nothing stored: no other tab shares it */
  }
}

/** Forgets this tab's token; a newer one another tab stored after signing in stays. */
export function forgetCsrf() {
  try {
    if (localStorage.getItem(CSRF_KEY) === state.csrf) localStorage.removeItem(CSRF_KEY);
  } catch {
    /* nothing stored */
  }
  state.csrf = null;
}

function signedOut(message) {
  window.dispatchEvent(new CustomEvent('console:signed-out', { detail: message }));
}

async function send(method, path, body, headers) {
  try {
    return await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, 'network_error', `the console cannot reach the server (${err.message})`);
  }
}

export async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const csrf = storedCsrf() ?? state.csrf;
  if (csrf) {
    headers['x-csrf-token'] = csrf;
    state.csrf = csrf;
  }
  const res = await send(method, path, body, headers);
  let data = null;
  const text = await res.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { message: text };
    }
  }
  if (!res.ok) {
    if (res.status === 401 && !path.startsWith('/api/session')) signedOut('Your session has ended: sign in again.');
    // The cookie without its token (storage cleared, or the cookie is another tab's newer
    // session, whose token the storage event brings): only a new sign-in gives one.
    else if (
      data?.error === 'csrf_rejected' &&
      state.session?.via === 'session' &&
      (storedCsrf() ?? state.csrf) === csrf
    )
      signedOut('Sign in again to continue.');
    throw new ApiError(res.status, data?.error, data?.message);
  }
  return data;
}
