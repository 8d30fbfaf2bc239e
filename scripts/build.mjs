// `npm run build` (and `prepare`, so `npm ci` builds): the product's TypeScript compiled to dist/
// with source maps (stack traces name the .ts lines), and the console's static files beside it.
// A fresh dist/ each time, so that nothing of a deleted source survives there.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));
const dist = path.join(root, 'dist');
fs.rmSync(dist, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
fs.cpSync(path.join(root, 'src/gateway/admin/ui'), path.join(dist, 'gateway/admin/ui'), { recursive: true });
