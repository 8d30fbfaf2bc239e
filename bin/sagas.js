#!/usr/bin/env node
// The `sagas` command: the compiled JavaScript in dist/ (built by `npm run build`, which `npm ci`
// runs as `prepare`), in this same process (no re-executed child, so Ctrl-C reaches exactly one
// supervisor), with source maps so that stack traces name the TypeScript lines.
import { existsSync } from 'node:fs';

process.setSourceMapsEnabled(true);
const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('sagas: dist/ is missing: run `npm run build` (npm ci runs it) first\n');
  process.exit(1);
}
const { main } = await import(entry.href);
process.exit(await main(process.argv.slice(2)));
