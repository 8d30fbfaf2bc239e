// The `sagas` command in this process: its router (main) and its helpers. The command as a user
// runs it, as a process signalled like a terminal would, is test/integration/cli-main.test.ts.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EXIT, UsageError } from '../../src/cli/command.js';
import { curlExamples, friendlyUrl, parseStartArgs } from '../../src/cli/commands/start.js';
import { COMMANDS } from '../../src/cli/main.js';
import { redactPassword } from '../../src/platform/config/config.js';
import { formatLine, tagWidthFor } from '../../src/cli/format.js';
import { sagasInProcess as sagas } from '../helpers/cli.js';

describe('the router (main, in process)', () => {
  const names = [...COMMANDS.map((c) => c.name), 'help'];

  it('every command answers --help, -h and `sagas help <command>` with its usage on stdout, exit 0', async () => {
    for (const name of names) {
      for (const argv of [
        [name, '--help'],
        [name, '-h'],
        ['help', name],
        [name, 'whatever', '--help'],
      ]) {
        const r = await sagas(argv);
        assert.equal(r.code, EXIT.ok, argv.join(' '));
        assert.match(r.stdout, new RegExp(`^Usage: sagas ${name}`), argv.join(' '));
        assert.equal(r.stderr, '', argv.join(' '));
      }
    }
  });

  it('every command lists in the overview, which --help and help print (exit 0)', async () => {
    for (const argv of [['help'], ['--help'], ['-h']]) {
      const r = await sagas(argv);
      assert.equal(r.code, EXIT.ok);
      for (const c of COMMANDS)
        assert.match(r.stdout, new RegExp(`^ {2}${c.name} +${c.summary.replace(/[()]/g, '\\$&')}$`, 'm'), c.name);
      assert.match(r.stdout, /^Exit codes:\n {2}0 .*\n {2}1 [^]* {2}2 /m);
    }
  });

  it('an unknown option is a usage error for every command: the message and the usage on stderr, exit 2', async () => {
    for (const name of names) {
      const r = await sagas([name, '--no-such-flag']);
      assert.equal(r.code, EXIT.usage, name);
      assert.equal(r.stdout, '', name);
      assert.ok(
        r.stderr.startsWith(`sagas ${name}: unknown option "--no-such-flag"\n\nUsage: sagas ${name}`),
        r.stderr,
      );
    }
  });

  it('an unknown command, a missing one, or an option before it: exit 2 with the overview', async () => {
    for (const [argv, said] of [
      [['frobnicate'], 'unknown command "frobnicate"'],
      [['bench'], 'unknown command "bench"'],
      [[], 'no command given'],
      [['--json', 'start'], 'the command comes first, got "--json"'],
    ] as const) {
      const r = await sagas([...argv]);
      assert.equal(r.code, EXIT.usage, said);
      assert.ok(r.stderr.startsWith(`sagas: ${said}\n\nUsage: sagas <command>`), r.stderr);
    }
    const r = await sagas(['help', 'frobnicate']);
    assert.equal(r.code, EXIT.usage);
    assert.match(r.stderr, /^sagas help: unknown command "frobnicate"/);
  });

  it('a configuration error is exit 2 with the variable named, before anything starts', async () => {
    const r = await sagas(['start', '--gateways', '2'], { SAGA_LOG_URL: '' });
    assert.equal(r.code, EXIT.usage);
    assert.match(r.stderr, /^sagas start: SAGA_LOG_URL: 2 gateways need one PostgreSQL saga log/);
    assert.equal(r.stdout, '');
    const bad = await sagas(['inspect'], { SAGA_LOG_URL: 'mysql://nope' });
    assert.equal(bad.code, EXIT.usage);
    assert.match(bad.stderr, /^sagas inspect: SAGA_LOG_URL: expected postgres:\/\//);
  });
});

describe('cli helpers', () => {
  it('friendlyUrl shows local addresses as localhost', () => {
    assert.equal(friendlyUrl('http://0.0.0.0:8080'), 'http://localhost:8080');
    assert.equal(friendlyUrl('http://127.0.0.1:1234'), 'http://localhost:1234');
    assert.equal(friendlyUrl('http://[::]:8080'), 'http://localhost:8080');
    assert.equal(friendlyUrl('http://10.1.2.3:8080'), 'http://10.1.2.3:8080');
  });

  it('parseStartArgs reads --gateways N and --gateways=N, anywhere', () => {
    assert.deepEqual(parseStartArgs([]), { target: undefined, json: false, gateways: undefined });
    assert.deepEqual(parseStartArgs(['--gateways', '3', '--json']), { target: undefined, json: true, gateways: 3 });
    assert.deepEqual(parseStartArgs(['--json', '--gateways=16']), { target: undefined, json: true, gateways: 16 });
    assert.deepEqual(parseStartArgs(['payment', '--json']), { target: 'payment', json: true, gateways: undefined });
    for (const bad of [
      ['--gateways', '0'],
      ['--gateways', ' '],
      ['--gateways=1e1'],
      ['--gateways', '--json'],
      ['--json=yes'],
      ['--frob'],
      ['-x'],
      ['order', 'payment'],
      ['shipping'],
    ]) {
      assert.throws(() => parseStartArgs(bad), UsageError, bad.join(' '));
    }
  });

  it('tags fit the longest name, and gateway-N have the gateway colour', () => {
    assert.equal(tagWidthFor(['order', 'gateway']), 9);
    assert.equal(tagWidthFor(['order', 'gateway-10']), 10);
    assert.ok(formatLine('gateway-10', 'x', { color: false, tagWidth: 10 }).startsWith('[gateway-10] x'));
    assert.ok(formatLine('order', 'x', { color: false, tagWidth: 10 }).startsWith('[order     ] x'));
    // eslint-disable-next-line no-control-regex -- ESC (\u001b) starts the ANSI colour code read here
    const colorOf = (name: string) => /^\u001b\[([\d;]+)m/.exec(formatLine(name, 'x', { color: true }))?.[1];
    assert.equal(colorOf('gateway-2'), colorOf('gateway'));
  });

  it('redactPassword hides a password', () => {
    assert.equal(redactPassword('postgres://sagas:s3cret@db:5432/sagas'), 'postgres://sagas:***@db:5432/sagas');
    assert.equal(redactPassword('postgres://sagas@db/sagas'), 'postgres://sagas@db/sagas');
  });

  it('curlExamples keeps prices in dollars with cents', () => {
    const [post] = curlExamples('http://localhost:8080');
    assert.ok(post?.includes('"price":50.00') && post.includes('"price":30.00'));
  });
});
