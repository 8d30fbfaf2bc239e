// `sagas certs`: the one-shot issuer of the mutual-TLS identities (docker-compose's `certs` service),
// in this process; from the compiled CLI: test/integration/certs-command.test.ts.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { EXIT } from '../../src/cli/command.js';
import { identityDir, loadTlsMaterial, TLS_IDENTITIES } from '../../src/platform/grpc/tls.js';
import { tempDir } from '../helpers/participants.js';
import { sagasInProcess as sagas } from '../helpers/cli.js';
import { filesUnder, IDENTITY_LAYOUT } from '../helpers/tls.js';

describe('sagas certs', () => {
  it('issues the four identities into $DATA_DIR/tls, one folder each, the CA key kept nowhere; run again, it says there is nothing to do', async () => {
    const dataDir = tempDir('certs-cmd');
    const first = await sagas(['certs'], { DATA_DIR: dataDir });
    assert.equal(first.code, EXIT.ok, first.stderr);
    const tlsDir = path.join(dataDir, 'tls');
    assert.match(
      first.stdout,
      new RegExp(
        `^issued gateway, order, inventory, payment in ${tlsDir}, from a new CA, whose key was used for this only and not kept\\n`,
      ),
    );
    for (const id of TLS_IDENTITIES)
      assert.match(
        first.stdout,
        new RegExp(`\\n {2}${identityDir(tlsDir, id)}/ {2}ca\\.crt ${id}\\.crt ${id}\\.key\\n`),
      );
    assert.deepEqual(filesUnder(tlsDir), IDENTITY_LAYOUT);
    for (const id of TLS_IDENTITIES) loadTlsMaterial(tlsDir, id);

    const again = await sagas(['certs'], { DATA_DIR: dataDir });
    assert.equal(again.code, EXIT.ok);
    assert.match(again.stdout, /^nothing to issue: gateway, order, inventory, payment are in place in /);
  });

  it('TLS_DIR and --dir choose the folder; --ca keeps a CA to complete the folder later; without it a missing identity is refused (exit 1) until --renew', async () => {
    const tlsDir = path.join(tempDir('certs-cmd-dir'), 'tls');
    const caDir = path.join(tempDir('certs-cmd-ca'), 'ca');
    const made = await sagas(['certs', '--ca', caDir], { TLS_DIR: tlsDir });
    assert.equal(made.code, EXIT.ok, made.stderr);
    assert.match(made.stdout, new RegExp(`from the CA in ${caDir} \\(made now; its key is kept there\\)`));
    assert.deepEqual(fs.readdirSync(caDir).sort(), ['ca.crt', 'ca.key']);

    fs.rmSync(identityDir(tlsDir, 'order'), { recursive: true });
    const refused = await sagas(['certs'], { TLS_DIR: tlsDir });
    assert.equal(refused.code, EXIT.failure);
    assert.equal(refused.stdout, '');
    assert.match(
      refused.stderr,
      /^sagas certs: cannot complete the identities \(tls_material_incomplete\): .* but not order, .*`sagas certs --ca DIR`.*`sagas certs --renew`/,
    );

    const completed = await sagas(['certs', '--ca', caDir], { TLS_DIR: tlsDir });
    assert.equal(completed.code, EXIT.ok, completed.stderr);
    assert.match(completed.stdout, new RegExp(`^issued order in ${tlsDir}, from the CA in ${caDir}\\n`));
    assert.deepEqual(filesUnder(tlsDir), IDENTITY_LAYOUT);

    const other = path.join(tempDir('certs-cmd-other'), 'tls');
    const renewed = await sagas(['certs', '--renew', '--dir', other], { TLS_DIR: tlsDir });
    assert.equal(renewed.code, EXIT.ok);
    assert.match(
      renewed.stdout,
      new RegExp(`^issued gateway, order, inventory, payment in ${other}, from a new CA.*\\nrestart every process`),
    );
    assert.deepEqual(filesUnder(other), IDENTITY_LAYOUT);
  });

  it('a wrong command line is exit 2 with the usage', async () => {
    for (const argv of [
      ['certs', '--ca'],
      ['certs', 'now'],
      ['certs', '--renew=yes'],
    ]) {
      const r = await sagas(argv, { DATA_DIR: tempDir('certs-cmd-usage') });
      assert.equal(r.code, EXIT.usage, argv.join(' '));
      assert.match(r.stderr, /^sagas certs: .*\n\nUsage: sagas certs/, r.stderr);
    }
  });
});
