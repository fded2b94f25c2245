// @ts-check
// Cursors and outbox on their own: de-duplication by (conversation, seq), gaps, queue order.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Cursors, Outbox } from '../src/index.js';

test('a message is new once per (conversation, seq), in any arrival order', () => {
  const c = new Cursors();
  assert.equal(c.accept('dm:a:b', 1), true);
  assert.equal(c.accept('dm:a:b', 1), false);
  assert.equal(c.accept('dm:a:b', 3), true, 'ahead of a gap');
  assert.equal(c.hasGap('dm:a:b'), true);
  assert.equal(c.cursor('dm:a:b'), 1);
  assert.equal(c.accept('dm:a:b', 3), false);
  assert.equal(c.accept('dm:a:b', 2), true, 'fills the gap');
  assert.equal(c.cursor('dm:a:b'), 3);
  assert.equal(c.hasGap('dm:a:b'), false);
  assert.equal(c.accept('g:1', 1), true, 'conversations are independent');
});

test('a sync cursor closes gaps the log will never fill (a group joined at seq 5)', () => {
  const c = new Cursors();
  assert.equal(c.accept('g:1', 6), true);
  assert.equal(c.hasGap('g:1'), true);
  c.advance('g:1', 5);
  assert.equal(c.cursor('g:1'), 6, 'folds 6, seen before');
  assert.equal(c.hasGap('g:1'), false);
  assert.deepEqual(c.since(), { 'g:1': 6 });
});

test('cursors survive a round trip through storage', () => {
  const c = new Cursors();
  c.accept('dm:a:b', 1);
  c.accept('dm:a:b', 4);
  const back = Cursors.from(JSON.parse(JSON.stringify(c)));
  assert.equal(back.accept('dm:a:b', 4), false);
  assert.equal(back.accept('dm:a:b', 2), true);
  assert.deepEqual(back.since(), { 'dm:a:b': 2 });
});

test('the outbox sends one item per conversation at a time, oldest first', () => {
  const o = new Outbox();
  const item = (/** @type {string} */ id, /** @type {string} */ key) => ({
    clientMsgId: id, conversation: key, body: id, queuedAt: '', key,
  });
  o.add(item('a1', 'A'));
  o.add(item('a2', 'A'));
  o.add(item('b1', 'B'));
  assert.deepEqual(o.take(0).map((i) => i.clientMsgId), ['a1', 'b1']);
  assert.deepEqual(o.take(0), [], 'in flight');
  o.again('a1');
  assert.deepEqual(o.take(0).map((i) => i.clientMsgId), ['a1'], 'a lost attempt goes again first');
  o.remove('a1');
  const at = o.later('b1', 1000, () => 500);
  assert.equal(at, 1500);
  assert.deepEqual(o.take(1000).map((i) => i.clientMsgId), ['a2'], 'b1 waits to retry');
  assert.deepEqual(o.take(1500).map((i) => i.clientMsgId), ['b1']);
  o.lostConnection();
  assert.deepEqual(o.take(1500).map((i) => i.clientMsgId), ['a2', 'b1']);
});
