// `sagas certs` from the compiled CLI (bin/sagas.js), as docker-compose's `certs` service runs it;
// the command itself, in this process: test/unit/certs-command.test.ts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { TLS_IDENTITIES } from '../../src/platform/grpc/tls.js';
import { tempDir } from '../helpers/participants.js';

const BIN = fileURLToPath(new URL('../../bin/sagas.js', import.meta.url));

const files = (dir: string) =>
  (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(dir, f)).isFile()).sort();
const LAYOUT = TLS_IDENTITIES.flatMap((id) => [`${id}/ca.crt`, `${id}/${id}.crt`, `${id}/${id}.key`]).sort();

describe('sagas certs', () => {
  it('runs from the compiled CLI (bin/sagas.js), as the compose `certs` service does', () => {
    const dataDir = tempDir('certs-bin');
    const r = spawnSync(process.execPath, [BIN, 'certs'], {
      env: { PATH: process.env.PATH ?? '', DATA_DIR: dataDir },
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(files(path.join(dataDir, 'tls')), LAYOUT);
  });
});
