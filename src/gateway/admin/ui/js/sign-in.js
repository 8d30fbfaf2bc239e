// The sign-in page: an admin token for a session (the console keeps the session, never the token).
import { api, keepCsrf } from './api.js';
import { h, mainView } from './dom.js';
import { nextView, state } from './state.js';

/** Shows the sign-in form with `message`; `onSignedIn()` runs once the session is open. */
export function signInView(message, onSignedIn) {
  nextView();
  const input = h('input', {
    id: 'token',
    name: 'token',
    type: 'password',
    autocomplete: 'current-password',
    required: true,
    'data-testid': 'token-input',
    'aria-describedby': 'token-help',
  });
  const error = h('p', { class: 'error', role: 'alert', 'data-testid': 'sign-in-error', hidden: !message }, message);
  const button = h('button', { type: 'submit', class: 'primary', 'data-testid': 'sign-in-submit' }, 'Sign in');
  const submit = async (e) => {
    e.preventDefault();
    button.disabled = true;
    error.hidden = true;
    try {
      const answer = await api('POST', '/api/session', { token: input.value });
      keepCsrf(answer.csrf_token);
      state.session = answer;
      input.value = '';
      await onSignedIn();
    } catch (err) {
      error.textContent = err.status === 401 || err.status === 403 ? 'That token is not valid.' : err.message;
      error.hidden = false;
      input.focus();
    } finally {
      button.disabled = false;
    }
  };
  const form = h(
    'form',
    { class: 'card sign-in', 'data-testid': 'sign-in-form', onsubmit: submit },
    h('h1', {}, 'Sign in'),
    h('label', { for: 'token' }, 'Admin token'),
    input,
    h(
      'p',
      { id: 'token-help', class: 'muted' },
      'A token from the gateway’s ADMIN_TOKENS. The console keeps a session, never the token.',
    ),
    error,
    button,
  );
  mainView().replaceChildren(h('section', { 'data-testid': 'sign-in' }, form));
  input.focus();
}
