import type { FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { HTTP_ERRORS } from './errors.js';

/** The error table as a paragraph of the document, so a client reads every code in one place. */
export function errorTable(): string {
  const rows = Object.entries(HTTP_ERRORS).map(([code, e]) => `| \`${code}\` | ${e.status} | ${e.summary} |`);
  return [
    'Errors are `{"error": "<code>", "message": "<text>"}`:',
    '',
    '| error | status | meaning |',
    '|---|---|---|',
    ...rows,
  ].join('\n');
}

/**
 * The package is private and names no licence (package.json has none, and there is no LICENSE
 * file): `UNLICENSED`, npm's word for "all rights reserved". Both documents (this one and the
 * admin listener's) say so, as an SPDX expression too (`LicenseRef-` is SPDX's form for a licence
 * not on its list). Should the project choose a licence, its SPDX id goes here.
 */
export const API_LICENSE = { name: 'UNLICENSED (all rights reserved)', identifier: 'LicenseRef-UNLICENSED' } as const;

/**
 * The OpenAPI 3.1 document, generated from the routes' schemas, at /openapi.json; and the
 * Swagger UI at /docs, served from the package's own files (no CDN: it works offline).
 * Registered before the routes, which it collects as they are added.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- FastifyInstance's generics differ per caller (type provider, logger); only its plugin API is used.
export async function registerOpenApi(app: FastifyInstance<any, any, any, any, any>): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'ecommerce-sagas gateway',
        version: '1',
        description: [
          'Orders placed through a saga over the order, inventory and payment services.',
          'Money is decimal dollars (at most two decimals). `X-Request-Id` is accepted or generated, and echoed.',
          '',
          errorTable(),
        ].join('\n'),
        license: API_LICENSE,
      },
      // Relative: the document is served by the listener it describes (HTTP_ADDR), whatever its address.
      servers: [{ url: '/', description: 'this gateway (HTTP_ADDR)' }],
      // The public API takes no credential: every operation is open (RATE_LIMIT_PER_MINUTE aside).
      security: [],
      tags: [
        { name: 'orders', description: 'the public API' },
        { name: 'sagas', description: 'sagas of any definition' },
        { name: 'ops', description: 'health, readiness and metrics' },
      ],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true, uiConfig: { deepLinking: true } });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
