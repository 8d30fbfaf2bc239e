import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { clockTime, failureSummary, formatLine, formatLogLine, formatTag, useColor } from '../../src/cli/format.js';

const ESC = '\u001b[';
const line = (rec: Record<string, unknown>) => JSON.stringify(rec);

describe('formatLogLine', () => {
  it('prints time, level, message and the other keys', () => {
    const out = formatLogLine(
      line({
        level: 'info',
        time: '2024-05-01T12:03:04.567Z',
        service: 'order',
        pid: 42,
        hostname: 'h',
        msg: 'order created',
        order_id: 'ord_1',
        saga_id: 'sg_1',
        trace_id: 'abc',
      }),
      false,
    );
    assert.equal(out, '12:03:04.567 INFO  order created order_id=ord_1 saga_id=sg_1 trace_id=abc');
  });

  it('quotes strings with spaces and renders numbers, booleans, null and objects', () => {
    const out = formatLogLine(
      line({
        level: 'warn',
        time: '2024-05-01T00:00:00.000Z',
        msg: 'm',
        a: 'two words',
        b: 3,
        c: true,
        d: null,
        e: { x: 1 },
        f: '',
      }),
      false,
    );
    assert.equal(out, '00:00:00.000 WARN  m a="two words" b=3 c=true d=null e={"x":1} f=""');
  });

  it('renders err as its message and stack on the following lines, indented', () => {
    const stack = 'Error: boom\n    at f (a.ts:1:1)\n    at g (b.ts:2:2)';
    const out = formatLogLine(
      line({
        level: 'error',
        time: '2024-05-01T00:00:00.000Z',
        msg: 'step failed',
        saga_id: 's1',
        err: { type: 'Error', message: 'boom', stack, code: 'E1' },
      }),
      false,
    );
    assert.deepEqual(out.split('\n'), [
      '00:00:00.000 ERROR step failed saga_id=s1 err.code=E1',
      '    Error: boom',
      '        at f (a.ts:1:1)',
      '        at g (b.ts:2:2)',
    ]);
  });

  it('prints the message of an err whose stack does not carry it', () => {
    const out = formatLogLine(line({ level: 'error', msg: 'x', err: { type: 'TypeError', message: 'bad' } }), false);
    assert.deepEqual(out.split('\n'), ['ERROR x', '    TypeError: bad']);
  });

  it('maps numeric pino levels and epoch-millisecond times', () => {
    assert.equal(
      formatLogLine(line({ level: 50, time: Date.UTC(2024, 0, 1, 1, 2, 3, 4), msg: 'x' }), false),
      '01:02:03.004 ERROR x',
    );
    assert.equal(formatLogLine(line({ level: 20, msg: 'y' }), false), 'DEBUG y');
  });

  it('passes non-JSON lines and non-object JSON through unchanged', () => {
    assert.equal(formatLogLine('plain text { not json', false), 'plain text { not json');
    assert.equal(formatLogLine('42', false), '42');
    assert.equal(formatLogLine('"a string"', false), '"a string"');
    assert.equal(formatLogLine('', false), '');
  });

  it('colors only when asked', () => {
    const rec = line({ level: 'error', time: '2024-05-01T00:00:00.000Z', msg: 'x', k: 1 });
    assert.ok(!formatLogLine(rec, false).includes(ESC));
    const colored = formatLogLine(rec, true);
    assert.ok(colored.includes(`${ESC}31mERROR${ESC}0m`));
    // eslint-disable-next-line no-control-regex -- ESC (\u001b) starts the ANSI colour codes stripped here
    assert.equal(colored.replace(/\u001b\[[0-9;]*m/g, ''), '00:00:00.000 ERROR x k=1');
  });
});

describe('clockTime', () => {
  it('takes HH:MM:SS.mmm from ISO text as written', () => {
    assert.equal(clockTime('2024-05-01T23:59:58.1+02:00'), '23:59:58.100');
    assert.equal(clockTime('2024-05-01T23:59:58Z'), '23:59:58.000');
    assert.equal(clockTime('2024-05-01T23:59:58.123456Z'), '23:59:58.123');
    assert.equal(clockTime(undefined), '');
  });
});

describe('formatLine', () => {
  it('prefixes every physical line with a fixed-width tag', () => {
    const out = formatLine(
      'order',
      line({ level: 'error', msg: 'x', err: { type: 'Error', message: 'boom', stack: 'Error: boom\n    at f' } }),
      { color: false },
    );
    assert.deepEqual(out.split('\n'), [
      '[order    ] ERROR x',
      '[order    ]     Error: boom',
      '[order    ]         at f',
    ]);
    assert.equal(formatLine('inventory', 'hi', { color: false }), '[inventory] hi');
    assert.equal(
      formatLine('gateway', 'hi', { color: false }).indexOf('hi'),
      formatLine('inventory', 'hi', { color: false }).indexOf('hi'),
    );
  });

  it('passes JSON through with the tag in json mode', () => {
    const raw = line({ level: 'info', msg: 'x' });
    assert.equal(formatLine('payment', raw, { color: false, json: true }), `[payment  ] ${raw}`);
  });

  it('colors the tag per service when colored', () => {
    assert.equal(formatTag('order', { color: true }), `${ESC}36m[order    ]${ESC}0m `);
    assert.notEqual(
      formatTag('payment', { color: true }),
      formatTag('order', { color: true }).replace('order    ', 'payment  '),
    );
  });
});

describe('useColor', () => {
  it('colors a TTY unless NO_COLOR is set', () => {
    assert.equal(useColor({ isTTY: true }, {}), true);
    assert.equal(useColor({ isTTY: true }, { NO_COLOR: '1' }), false);
    assert.equal(useColor({ isTTY: false }, {}), false);
    assert.equal(useColor({}, {}), false);
  });
});

describe('failureSummary', () => {
  it('keeps the error and fatal log lines as "msg: error message"', () => {
    const lines = [
      line({ level: 'info', msg: 'starting' }),
      line({
        level: 'fatal',
        msg: 'failed to start',
        err: {
          type: 'Error',
          message: 'listen EADDRINUSE: address already in use 127.0.0.1:9090',
          code: 'EADDRINUSE',
          stack: 'Error: ...\n    at x',
        },
      }),
    ];
    assert.deepEqual(failureSummary(lines), [
      'failed to start: listen EADDRINUSE: address already in use 127.0.0.1:9090 (EADDRINUSE)',
    ]);
  });

  it('falls back to the raw lines without stack frames', () => {
    const lines = [
      'file:///x/main.ts:3',
      'Error: Cannot find module',
      '    at a (b:1:1)',
      '    at c (d:2:2)',
      '',
      'Node.js v20.20.2',
    ];
    assert.deepEqual(failureSummary(lines), ['file:///x/main.ts:3', 'Error: Cannot find module']);
  });
});
