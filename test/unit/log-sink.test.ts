import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { LogSink, type SinkTarget } from '../../src/platform/telemetry/log-sink.js';

/** A target that records each write and reports a queue as long as the test says. */
class RecordingTarget extends EventEmitter implements SinkTarget {
  writes: string[] = [];
  writableLength = 0;
  write(chunk: string): boolean {
    this.writes.push(chunk);
    return true;
  }
}

const turn = () => new Promise((r) => setImmediate(r));

test('the lines of one event-loop turn leave in one write, in order', async () => {
  const t = new RecordingTarget();
  const sink = new LogSink(t);
  sink.write('a\n');
  sink.write('b\n');
  assert.equal(t.writes.length, 0, 'nothing is written inside the turn');
  await turn();
  sink.write('c\n');
  await turn();
  assert.deepEqual(t.writes, ['a\nb\n', 'c\n']);
});

test('a reader that falls behind the cap loses lines, counted, and is told how many once it is back', async () => {
  const t = new RecordingTarget();
  const sink = new LogSink(t, { maxQueuedBytes: 10 });
  t.writableLength = 11;
  sink.write('lost 1\n');
  sink.write('lost 2\n');
  await turn();
  assert.equal(t.writes.length, 0);
  assert.equal(sink.droppedLines, 2);
  t.writableLength = 0;
  sink.write('kept\n');
  await turn();
  assert.equal(t.writes.length, 1);
  const [note, kept] = t.writes[0]!.trimEnd().split('\n');
  assert.equal(JSON.parse(note!).msg, '2 log lines dropped: stdout was not read fast enough');
  assert.equal(kept, 'kept');
  assert.equal(sink.droppedLines, 0);
});

test('flush hands the pending lines over and waits for the reader, at most flushTimeoutMs', async () => {
  const t = new RecordingTarget();
  const sink = new LogSink(t, { flushTimeoutMs: 50 });
  sink.write('x\n');
  t.writableLength = 5;
  let flushed = false;
  sink.flush(() => (flushed = true));
  assert.deepEqual(t.writes, ['x\n']);
  assert.equal(flushed, false, 'waits while bytes are queued');
  t.writableLength = 0;
  t.emit('drain');
  assert.equal(flushed, true);

  t.writableLength = 5;
  const started = performance.now();
  await new Promise<void>((r) => sink.flush(() => r()));
  assert.ok(performance.now() - started >= 45, 'a reader that never drains releases the flush after the timeout');
});

test('after a broken pipe nothing more is written or queued', async () => {
  const t = new RecordingTarget();
  const sink = new LogSink(t);
  sink.write('before\n');
  sink.markBroken();
  sink.write('after\n');
  await turn();
  assert.deepEqual(t.writes, []);
});
