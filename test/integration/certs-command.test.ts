// `sagas certs` from the compiled CLI (bin/sagas.js), as docker-compose's `certs` service runs it;
// the command itself, in this process: test/unit/certs-command.test.ts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { tempDir } from '../helpers/participants.js';
import { filesUnder, IDENTITY_LAYOUT } from '../helpers/tls.js';

const BIN = fileURLToPath(new URL('../../bin/sagas.js', import.meta.url));

describe('sagas certs', () => {
  it('runs from the compiled CLI (bin/sagas.js), as the compose `certs` service does', () => {
    const dataDir = tempDir('certs-bin');
    const r = spawnSync(process.execPath, [BIN, 'certs'], {
      env: { PATH: process.env.PATH ?? '', DATA_DIR: dataDir },
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(filesUnder(path.join(dataDir, 'tls')), IDENTITY_LAYOUT);
  });
});
