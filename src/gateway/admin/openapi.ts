/**
 * The admin listener's OpenAPI 3.1 document, generated from the admin routes' schemas like the
 * public one (src/gateway/http/openapi.ts), and served at `GET /api/openapi.json` by api.ts,
 * behind the same authentication as every other /api route: it holds no data, but it maps the
 * operator surface (actions, the fault plan, the books), and one rule for all of /api ("a caller
 * or nothing", the sign-in aside) is simpler to keep right than a list of exceptions. Whoever
 * generates a client from it holds a token already; `npm run generate:api-types` builds the
 * CLI's types (src/cli/admin-api-types.ts) without a listener at all.
 */
import type { SwaggerOptions } from '@fastify/swagger';
import { API_LICENSE, errorTable } from '../http/openapi.js';
import { SECURE_SESSION_COOKIE, SESSION_COOKIE } from './auth.js';

/** The security schemes' names, as operations and the top-level requirement name them. */
export const ADMIN_SECURITY = {
  bearer: 'bearer',
  session: 'session',
  secureSession: 'secureSession',
  csrf: 'csrf',
} as const;

/** The credentials auth.ts takes with ADMIN_TOKENS. */
const SECURITY_SCHEMES = {
  [ADMIN_SECURITY.bearer]: {
    type: 'http',
    scheme: 'bearer',
    description: 'a token of ADMIN_TOKENS (`name:role:token`)',
  },
  [ADMIN_SECURITY.session]: {
    type: 'apiKey',
    in: 'cookie',
    name: SESSION_COOKIE,
    description: 'the session `POST /api/session` opened over plain HTTP; never enough alone: X-CSRF-Token too',
  },
  [ADMIN_SECURITY.secureSession]: {
    type: 'apiKey',
    in: 'cookie',
    name: SECURE_SESSION_COOKIE,
    description: 'the session `POST /api/session` opened over TLS; never enough alone: X-CSRF-Token too',
  },
  [ADMIN_SECURITY.csrf]: {
    type: 'apiKey',
    in: 'header',
    name: 'X-CSRF-Token',
    description: "`csrf_token` of the sign-in's answer",
  },
} as const;

/**
 * Who may call (auth.ts): a bearer token, or the session cookie with its X-CSRF-Token. With no
 * ADMIN_TOKENS (loopback-only mode) a loopback client needs no credential and any it sends is
 * ignored: the document that listener serves declares no scheme and an empty requirement. The
 * operations and their shapes are the same in both modes.
 */
function security(loopbackOnly: boolean): {
  components: { securitySchemes?: typeof SECURITY_SCHEMES };
  security: Array<Record<string, string[]>>;
} {
  if (loopbackOnly) return { components: {}, security: [{}] };
  return {
    components: { securitySchemes: SECURITY_SCHEMES },
    security: [
      { [ADMIN_SECURITY.bearer]: [] },
      { [ADMIN_SECURITY.session]: [], [ADMIN_SECURITY.csrf]: [] },
      { [ADMIN_SECURITY.secureSession]: [], [ADMIN_SECURITY.csrf]: [] },
    ],
  };
}

/** @fastify/swagger's options for the admin app (registered before its routes, which it collects as they are added). */
export function adminOpenApiOptions(opts: { loopbackOnly: boolean }): SwaggerOptions {
  return {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'ecommerce-sagas admin API',
        version: '1',
        description: [
          "The gateway's admin listener (ADMIN_ADDR): sagas and their timelines, the PARKED queue, the",
          "overview, stock, operator actions, the participants' books and the fault switchboard; what the",
          'console and `sagas list|show|retry|compensate|resolve|reconcile` use.',
          '',
          'Callers: `Authorization: Bearer <token>` (a token of ADMIN_TOKENS), or the session cookie that',
          '`POST /api/session` sets together with the `X-CSRF-Token` its answer gave (reads included).',
          'With no ADMIN_TOKENS, loopback clients only, with no credential. A viewer reads; an operator',
          'also acts.',
          '',
          errorTable(),
        ].join('\n'),
        license: API_LICENSE,
      },
      // Relative: the document is served by the listener it describes.
      servers: [{ url: '/', description: 'this admin listener (ADMIN_ADDR)' }],
      ...security(opts.loopbackOnly),
      tags: [
        { name: 'session', description: "the console's sign-in" },
        { name: 'sagas', description: 'sagas, their timelines and the operator actions' },
        { name: 'ops', description: 'overview, stock and the books' },
        { name: 'faults', description: 'the fault switchboard (FAULTS_ENABLED=1)' },
      ],
    },
  };
}
