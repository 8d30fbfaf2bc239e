/**
 * `sagas versions` and `sagas migrate` (issue 26, item 1) against a real gateway admin listener
 * (the inject harness's parts, listening on an ephemeral loopback port) registering place_order
 * v1 and v2: the table and its JSON, the dry run's counts and reasons, the confirmation on a
 * terminal, the refusal without one (exit 2, nothing moved), the refusals of the API (exit 1), and a
 * gateway that no longer registers a version with sagas in flight.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { PassThrough, Writable } from 'node:stream';
import { gatewayApp, type GatewayApp } from '../helpers/gateway-app.js';
import { sagasInProcess as sagas } from '../helpers/cli.js';
import { newSaga, STARTED } from '../helpers/saga-log-work.js';
import { EXIT } from '../../src/cli/command.js';
import { migrateCommand, type MigrateIo } from '../../src/cli/commands/migrate.js';
import type { SagaRecord } from '../../src/saga/model.js';

const OPERATOR = 'op-cli-versions-0123456789';
const VIEWER = 'vw-cli-versions-0123456789';

let g: GatewayApp;
let env: NodeJS.ProcessEnv;
const ids = { afterPivot: '', compensating: '', finishing: '', newer: '' };

/** A saga as another gateway left it in the log: parked, or in flight under a live foreign lease. */
async function leftInLog(app: GatewayApp, over: Partial<SagaRecord>): Promise<string> {
  const id = randomUUID();
  const at = Date.now() - 60_000;
  const held = over.status === 'RUNNING' || over.status === 'COMPENSATING';
  const res = await app.log.create(
    newSaga(id, {
      definition: 'place_order',
      version: 1,
      input: { order_id: id, customer_id: 'cust_cli_versions' },
      subject: 'cust_cli_versions',
      leaseOwner: held ? 'gateway-elsewhere' : null,
      leaseExpiresAt: 0,
      createdAt: at,
      updatedAt: at,
      ...over,
    }),
    [STARTED],
    held ? 3_600_000 : 0,
  );
  assert.ok(res.created);
  return id;
}

async function versionOf(id: string): Promise<number | undefined> {
  return (await g.log.get(id))?.version;
}

/** The migrate command with a stdin of our own (a terminal or not) and the answer typed into it. */
async function migrateWith(argv: string[], stdin: { tty: boolean; answer?: string }, token = OPERATOR) {
  const out = { stdout: '', stderr: '' };
  const sink = (k: 'stdout' | 'stderr') =>
    new Writable({
      write(chunk, _e, cb) {
        out[k] += String(chunk);
        // The question is asked on stderr: answer it then, as a person would.
        if (k === 'stderr' && /\[y\/N\] $/.test(out.stderr) && stdin.answer !== undefined) input.end(stdin.answer);
        cb();
      },
    });
  const input = Object.assign(new PassThrough(), { isTTY: stdin.tty });
  const io: MigrateIo = {
    env: { ...env, SAGAS_ADMIN_TOKEN: token, NO_COLOR: '1' },
    stdout: sink('stdout'),
    stderr: sink('stderr'),
    stdin: input,
  };
  const code = await migrateCommand.run(argv, io);
  return { code, ...out };
}

const MIGRATE = ['--definition', 'place_order', '--from', '1', '--to', '2'];

before(async () => {
  g = await gatewayApp({
    adminTokens: `alice:operator:${OPERATOR},victor:viewer:${VIEWER}`,
    placeOrderVersions: { registered: [1, 2], start: 1 },
  });
  const url = await g.admin.listen({ port: 0, host: '127.0.0.1' });
  env = { SAGAS_ADMIN_URL: url, SAGAS_ADMIN_TOKEN: VIEWER };
  ids.afterPivot = await leftInLog(g, {
    status: 'PARKED',
    stepIndex: 4,
    currentStep: 'commit_stock',
    attempt: 50,
    failure: { step: 'commit_stock', code: 'unavailable', message: 'inventory unreachable' },
  });
  ids.compensating = await leftInLog(g, {
    status: 'PARKED',
    stepIndex: 2,
    compIndex: 1,
    currentStep: 'reserve_stock',
    attempt: 5,
    failure: { step: 'charge_payment', code: 'payment_declined', message: 'declined' },
  });
  ids.finishing = await leftInLog(g, { status: 'COMPENSATING', stepIndex: 1, compIndex: -1 });
  ids.newer = await leftInLog(g, { version: 3, status: 'RUNNING', stepIndex: 1, currentStep: 'create_order' });
});
after(() => g.close());

describe('sagas versions', () => {
  test('a table of every version, its state in words and its sagas in flight', async () => {
    const r = await sagas(['versions'], env);
    assert.equal(r.code, EXIT.ok, r.stderr);
    assert.equal(r.stderr, '');
    assert.deepEqual(r.stdout.trimEnd().split('\n'), [
      'DEFINITION   VERSION  STATE                   STARTS HERE  RUNNING  COMPENSATING  PARKED',
      'place_order        1  driven here             yes                0             1       2',
      'place_order        2  driven here             -                  0             0       0',
      'place_order        3  left to other gateways  -                  1             0       0',
    ]);
  });

  test('--json: the API answer', async () => {
    const r = await sagas(['versions', '--json'], env);
    assert.equal(r.code, EXIT.ok, r.stderr);
    const body = JSON.parse(r.stdout) as { versions: Array<{ version: number; state: string; in_flight: number }> };
    assert.deepEqual(
      body.versions.map((v) => [v.version, v.state, v.in_flight]),
      [
        [1, 'driven', 3],
        [2, 'driven', 0],
        [3, 'left_to_others', 1],
      ],
    );
  });

  test('a gateway that dropped a version with sagas in flight says they are stranded, and how out', async () => {
    const only2 = await gatewayApp({
      adminTokens: `alice:operator:${OPERATOR}`,
      placeOrderVersions: { registered: [2], start: 2 },
    });
    try {
      await leftInLog(only2, { status: 'PARKED', stepIndex: 4, currentStep: 'commit_stock' });
      const url = await only2.admin.listen({ port: 0, host: '127.0.0.1' });
      const r = await sagas(['versions'], { SAGAS_ADMIN_URL: url, SAGAS_ADMIN_TOKEN: OPERATOR });
      assert.equal(r.code, EXIT.ok, r.stderr);
      assert.match(r.stdout, /^place_order +1 +removed here: 1 sagas stranded +- +0 +0 +1$/m);
      assert.match(r.stdout, /^place_order +2 +driven here +yes /m);
      assert.match(r.stdout, /sagas migrate --definition place_order --from 1 --to N --dry-run/);
    } finally {
      await only2.close();
    }
  });

  test('an unreachable admin API: exit 1, saying where it looked', async () => {
    const r = await sagas(['versions'], { SAGAS_ADMIN_URL: 'http://127.0.0.1:9', SAGAS_ADMIN_TOKEN: VIEWER });
    assert.equal(r.code, EXIT.failure);
    assert.match(r.stderr, /^sagas versions: cannot reach the admin API at http:\/\/127\.0\.0\.1:9/);
  });
});

describe('sagas migrate', () => {
  test('--dry-run (a viewer may): the counts, the stays by code with reasons, one line per saga', async () => {
    const r = await sagas(['migrate', ...MIGRATE, '--dry-run'], env);
    assert.equal(r.code, EXIT.ok, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines[0], 'dry run: place_order@1 → version 2: 3 saga(s) in flight looked at; 2 would move, 1 stay');
    assert.deepEqual(lines.slice(1, 3), ['stay, by code:', '  finishing  1']);
    assert.equal(
      lines[3],
      `  ${ids.finishing}  COMPENSATING  stays at reserve_stock: finishing: it has nothing left to compensate and is finishing`,
    );
    assert.ok(lines.includes(`  ${ids.afterPivot}  PARKED  would move: commit_stock → commit_stock`), r.stdout);
    assert.ok(lines.includes(`  ${ids.compensating}  PARKED  would move: reserve_stock → create_order`), r.stdout);
    assert.equal(lines.length, 6);
    assert.equal(await versionOf(ids.afterPivot), 1);
  });

  test('--dry-run --json: the API answer', async () => {
    const r = await sagas(['migrate', ...MIGRATE, '--dry-run', '--json'], env);
    assert.equal(r.code, EXIT.ok, r.stderr);
    const body = JSON.parse(r.stdout) as { moved: number; stayed: number; by_code: Record<string, number> };
    assert.deepEqual([body.moved, body.stayed, body.by_code], [2, 1, { finishing: 1 }]);
  });

  test('without --yes and without a terminal: refused, exit 2, nothing asked of the API', async () => {
    const r = await migrateWith(MIGRATE, { tty: false });
    assert.equal(r.code, EXIT.usage);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /pass --yes/);
    assert.equal(await versionOf(ids.afterPivot), 1);
  });

  test('bad command lines: exit 2 with the usage, nothing sent', async () => {
    for (const [argv, said] of [
      [['--from', '1', '--to', '2'], /--definition is required/],
      [['--definition', 'place_order', '--from', 'x', '--to', '2'], /--from must be a whole number/],
      [['--definition', 'place_order', '--from', '1.5', '--to', '2'], /--from must be a whole number/],
      [['--definition', 'place_order', '--from', '1'], /--to is required/],
      [[...MIGRATE, '--map', 'create_order'], /--map: "create_order" is not old_step=new_step/],
      [['--definition', 'place_order', '--from', '2', '--to', '2'], /both 2: nothing to move/],
      [[...MIGRATE, '--dry-run', '--yes'], /choose one/],
      [[...MIGRATE, '--json'], /--json with a real migration needs --yes/],
    ] as const) {
      const r = await sagas(['migrate', ...argv], env);
      assert.equal(r.code, EXIT.usage, argv.join(' '));
      assert.match(r.stderr, said, argv.join(' '));
      assert.match(r.stderr, /Usage: sagas migrate/);
    }
  });

  test("the API's refusals: exit 1 with the code and message", async () => {
    const unknown = await sagas(
      ['migrate', '--definition', 'place_order', '--from', '1', '--to', '3', '--dry-run'],
      env,
    );
    assert.equal(unknown.code, EXIT.failure);
    assert.match(unknown.stderr, /unknown_version \(409\): this gateway does not register place_order@3/);
    const other = await sagas(['migrate', '--definition', 'ship_order', '--from', '1', '--to', '2', '--dry-run'], env);
    assert.equal(other.code, EXIT.failure);
    assert.match(other.stderr, /unknown_definition \(400\)/);
    const viewer = await sagas(['migrate', ...MIGRATE, '--yes'], env);
    assert.equal(viewer.code, EXIT.failure);
    assert.match(viewer.stderr, /forbidden \(403\): victor is a viewer/);
    assert.equal(await versionOf(ids.afterPivot), 1);
  });

  test('on a terminal: the dry run, then the question; "n" changes nothing', async () => {
    const r = await migrateWith(MIGRATE, { tty: true, answer: 'n\n' });
    assert.equal(r.code, EXIT.ok, r.stderr);
    assert.match(
      r.stdout,
      /^dry run: place_order@1 → version 2: 3 saga\(s\) in flight looked at; 2 would move, 1 stay$/m,
    );
    assert.match(r.stderr, /Move 2 saga\(s\) of place_order@1 to version 2\? \[y\/N\] $/);
    assert.match(r.stdout, /not confirmed: nothing done/);
    assert.equal(await versionOf(ids.afterPivot), 1);
  });

  test('on a terminal, "y" migrates: moved, recorded with the note, and shown in sagas versions', async () => {
    const r = await migrateWith([...MIGRATE, '--note', 'v2 rollout', '--action-id', 'migrate_cli_1'], {
      tty: true,
      answer: 'y\n',
    });
    assert.equal(r.code, EXIT.ok, r.stderr);
    assert.match(r.stdout, /^place_order@1 → version 2: 3 saga\(s\) in flight looked at; 2 moved, 1 stay$/m);
    assert.match(r.stdout, new RegExp(`^  ${ids.afterPivot}  PARKED  moved: commit_stock → commit_stock$`, 'm'));
    assert.match(r.stdout, /^action id migrate_cli_1$/m);
    assert.equal(await versionOf(ids.afterPivot), 2);
    assert.equal(await versionOf(ids.compensating), 2);
    assert.equal(await versionOf(ids.finishing), 1);
    const events = await g.log.events(ids.afterPivot, { afterSeq: 0, limit: 100 });
    const act = events.find((e) => e.type === 'OPERATOR_ACTION')?.data as Record<string, unknown> | undefined;
    assert.deepEqual(
      [act?.action, act?.action_id, act?.actor, act?.note, act?.from_version, act?.to_version],
      ['migrate', 'migrate_cli_1', 'alice', 'v2 rollout', 1, 2],
    );
    const v = await sagas(['versions'], env);
    assert.match(v.stdout, /^place_order +1 +driven here +yes +0 +1 +0$/m);
    assert.match(v.stdout, /^place_order +2 +driven here +- +0 +0 +2$/m);
  });

  test('--yes migrates without asking (nothing left to move here: the one that stays stays)', async () => {
    const r = await sagas(['migrate', ...MIGRATE, '--yes'], { ...env, SAGAS_ADMIN_TOKEN: OPERATOR });
    assert.equal(r.code, EXIT.ok, r.stderr);
    assert.match(r.stdout, /^place_order@1 → version 2: 1 saga\(s\) in flight looked at; 0 moved, 1 stay$/m);
    assert.match(r.stdout, /^action id migrate_[0-9a-f-]{36}$/m);
  });

  test('long lists are capped, saying how many more', async () => {
    for (let i = 0; i < 60; i++)
      await leftInLog(g, { version: 2, status: 'PARKED', stepIndex: 4, currentStep: 'commit_stock' });
    const r = await sagas(['migrate', '--definition', 'place_order', '--from', '2', '--to', '1', '--dry-run'], env);
    assert.equal(r.code, EXIT.ok, r.stderr);
    const sagaLines = r.stdout.split('\n').filter((l) => /^ {2}[0-9a-f-]{36} {2}/.test(l));
    assert.equal(sagaLines.length, 50);
    assert.match(r.stdout, /^ {2}… and 12 more saga\(s\)/m);
  });
});
