/**
 * The console's static files, from src/gateway/admin/ui/ (shipped with the package: nothing is
 * fetched from the internet). `GET /` is index.html; `GET /ui/<file>` any file of that folder,
 * and `GET /ui/js/<file>` any of its ES modules (no other sub-folder), with a known extension.
 * Files are read at each request and sent `no-store` (as everything on the admin listener:
 * app.ts), so a new build is seen at once; a folder without index.html serves a placeholder page.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { HttpError } from '../http/errors.js';

export const UI_DIR = fileURLToPath(new URL('./ui/', import.meta.url));

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.woff2': 'font/woff2',
  '.map': 'application/json; charset=utf-8',
};

const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$/;

/** Only this origin's scripts, styles, images and API; never framed (clickjacking). */
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

const PLACEHOLDER = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>sagas console</title></head>
<body><h1>sagas console</h1><p>The console's files are not installed (src/gateway/admin/ui/ has no index.html).
The admin API answers under <code>/api</code>, e.g. <code>/api/sagas</code>; or use <code>sagas list</code>.</p></body></html>
`;

function secure(reply: FastifyReply, type: string): FastifyReply {
  return reply
    .header('content-type', type)
    .header('cache-control', 'no-store')
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY')
    .header('content-security-policy', CSP);
}

async function fileOrUndefined(file: string): Promise<Buffer | undefined> {
  try {
    return await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'EISDIR')
      return undefined;
    throw err;
  }
}

export const adminUi: FastifyPluginAsync<{ dir?: string }> = async (app, opts) => {
  const dir = opts.dir ?? UI_DIR;

  app.get('/', { schema: { hide: true } }, async (_req, reply) => {
    const index = await fileOrUndefined(path.join(dir, 'index.html'));
    return secure(reply, TYPES['.html'] as string).send(index ?? PLACEHOLDER);
  });

  // The name is one path segment of known characters: nothing outside the folder can be named.
  const serve = async (folder: string, name: string, reply: FastifyReply) => {
    const type = TYPES[path.extname(name).toLowerCase()];
    const body = FILE_NAME.test(name) && type ? await fileOrUndefined(path.join(dir, folder, name)) : undefined;
    if (!body || !type) throw new HttpError('not_found', `no file ${name} in the console`);
    return secure(reply, type).send(body);
  };
  app.get<{ Params: { file: string } }>('/ui/:file', { schema: { hide: true } }, async (req, reply) =>
    serve('', req.params.file, reply),
  );
  app.get<{ Params: { file: string } }>('/ui/js/:file', { schema: { hide: true } }, async (req, reply) =>
    serve('js', req.params.file, reply),
  );
};
