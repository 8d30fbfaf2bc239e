import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { IP, Lab, STATE_ROOT, whyNoNamespaces } from '../helpers/netns.js';

// The harness itself, before any system is placed on it: what a lab is made of (and is not),
// a cut and its heal, and that nothing is left behind — also when the process that made it is
// stopped with SIGTERM or killed with SIGKILL (the next lab removes what it left).

const TCP_PROXY = fileURLToPath(new URL('../helpers/tcp-proxy.ts', import.meta.url));
const CHILD = fileURLToPath(new URL('./fixtures/lab-child.ts', import.meta.url));

const skip = await whyNoNamespaces();

/** A command's stdout (empty if it fails). */
function output(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    p.on('close', () => resolve(out));
  });
}

/** Whether a TCP connection from `from` to `to`:7000 opens within `ms`. */
async function connects(lab: Lab, from: string, to: string, ms = 1_000): Promise<boolean> {
  const script = `const s = require('node:net').connect(7000, '${lab.addr(to)}');
    s.on('connect', () => process.exit(0)); s.on('error', () => process.exit(1));
    setTimeout(() => process.exit(2), ${ms});`;
  return lab.exec(from, process.execPath, ['-e', script]).then(
    () => true,
    () => false,
  );
}

/** A lab's child process, started and made to say it made its lab. */
async function childWithLab(): Promise<ReturnType<typeof spawn>> {
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), CHILD], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (b: Buffer) => b.toString().includes('made') && resolve());
    child.once('exit', (code) => reject(new Error(`the lab's child exited (${code}) before it made its lab`)));
  });
  return child;
}

describe('hosts: the lab', { skip }, () => {
  after(() => assert.deepEqual(Lab.leftovers(), [], 'every namespace of the test is removed'));

  test('one namespace per host on a /30 of 198.51.100.0/24 through the hub: no default route, no IPv6, nothing in the machine', async () => {
    const lab = await Lab.create(['a', 'b', 'c']);
    try {
      assert.deepEqual(
        ['a', 'b', 'c'].map((h) => lab.addr(h)),
        ['198.51.100.2', '198.51.100.6', '198.51.100.10'],
      );
      for (const h of ['a', 'b', 'c']) {
        const routes = (await lab.exec(h, 'ip', ['-4', 'route'])).trim().split('\n');
        assert.equal(routes.length, 2, routes.join('\n'));
        assert.ok(routes.some((r) => r.startsWith('198.51.100.0/24 via ')));
        assert.ok(!routes.some((r) => r.startsWith('default')));
        assert.equal((await lab.exec(h, 'ip', ['-6', 'addr'])).trim(), '', `${h} has no IPv6 address`);
        const links = (await lab.exec(h, 'ip', ['-o', 'link'])).trim().split('\n');
        assert.deepEqual(
          links.map((l) => l.split(':')[1]?.trim().split('@')[0]),
          ['lo', 'eth0'],
        );
      }
      // Nothing of the lab is in the machine's own namespace: no veth end, no address of it.
      const own = await output(IP, ['-o', 'addr']);
      assert.match(own, / lo /, "the machine's own addresses were read");
      assert.ok(!own.includes('198.51.100.'), 'no address of the lab in the machine');
      assert.ok(!/ v-[a-z]/.test(own), 'no veth end of the lab in the machine');

      await lab.spawn('b', 'server-b', TCP_PROXY, {
        env: { PATH: process.env.PATH },
        args: [JSON.stringify({ routes: [{ listen: `${lab.addr('b')}:7000`, target: `${lab.addr('b')}:7001` }] })],
        nodeArgs: ['--import', import.meta.resolve('tsx')],
      });
      await lab.spawn('c', 'server-c', TCP_PROXY, {
        env: { PATH: process.env.PATH },
        args: [JSON.stringify({ routes: [{ listen: `${lab.addr('c')}:7000`, target: `${lab.addr('c')}:7001` }] })],
        nodeArgs: ['--import', import.meta.resolve('tsx')],
      });
      await lab.count('a-to-b', 'a', ['b'], 1);
      assert.ok(await connects(lab, 'a', 'b'), 'a reaches b through the hub');
      assert.ok((await lab.packets('a-to-b')) > 0, 'the hub counted the packets from a to b');

      await lab.cut('a', 'b');
      assert.equal(await connects(lab, 'a', 'b'), false, 'cut: a does not reach b');
      assert.equal(await connects(lab, 'b', 'a'), false, 'cut: nor b a');
      assert.ok(await connects(lab, 'a', 'c'), 'a still reaches c');
      await lab.heal('a', 'b');
      assert.ok(await connects(lab, 'a', 'b'), 'healed: a reaches b again');
    } finally {
      await lab.destroy();
    }
    assert.deepEqual(Lab.leftovers(), []);
    assert.deepEqual(
      fs.readdirSync(STATE_ROOT).filter((f) => f.startsWith('run-')),
      [],
      "the run's folder is removed",
    );
  });

  test('SIGTERM of the process that made a lab removes it', async () => {
    const child = await childWithLab();
    assert.ok(Lab.leftovers().length > 0);
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
    assert.deepEqual(Lab.leftovers(), []);
  });

  test('what a process killed with SIGKILL left (its namespaces, a daemon inside) is removed by the next lab', async () => {
    const child = await childWithLab();
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    assert.deepEqual(Lab.leftovers().sort(), ['sgh-a', 'sgh-b', 'sgh-hub']);
    const daemons = (await output(IP, ['netns', 'pids', 'sgh-b'])).split(/\s+/).filter(Boolean).map(Number);
    assert.ok(daemons.length > 0, 'a process outlived its maker inside sgh-b');
    const lab = await Lab.create(['c']);
    try {
      assert.deepEqual(Lab.leftovers().sort(), ['sgh-c', 'sgh-hub']);
      // Killed (a zombie until its new parent reaps it, or gone).
      const dead = (pid: number) => {
        try {
          return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z') ?? true;
        } catch {
          return true;
        }
      };
      for (const pid of daemons) assert.ok(dead(pid), `process ${pid} of sgh-b is gone`);
    } finally {
      await lab.destroy();
    }
    assert.deepEqual(Lab.leftovers(), []);
  });
});
