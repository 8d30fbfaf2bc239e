#!/usr/bin/env node
// The `sagas` command: loads the TypeScript sources through tsx in this same process (no
// re-executed child, so Ctrl-C reaches exactly one supervisor) and runs src/cli/main.ts.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exit(await main(process.argv.slice(2)));
