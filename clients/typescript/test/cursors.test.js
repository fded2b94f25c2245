// @ts-check
// Cursors and outbox on their own: de-duplication and order by (conversation, seq), gaps,
// queue order.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Cursors, Outbox } from '../src/index.js';

/** @param {string} conversation @param {number} seq */
const m = (conversation, seq) => ({
  conversation, seq, from: 'a', body: `#${seq}`, sent_at: '2026-01-01T00:00:00.000Z', client_msg_id: `c${seq}`,
});
const seqs = (/** @type {{ seq: number }[]} */ ms) => ms.map((x) => x.seq);

test('messages come out once each, in seq order, whatever order they arrive in', () => {
  const c = new Cursors();
  assert.deepEqual(seqs(c.take(m('dm:a:b', 1))), [1]);
  assert.deepEqual(seqs(c.take(m('dm:a:b', 1))), [], 'seen');
  assert.deepEqual(seqs(c.take(m('dm:a:b', 3))), [], 'held behind the gap');
  assert.equal(c.hasGap('dm:a:b'), true);
  assert.equal(c.cursor('dm:a:b'), 1);
  assert.deepEqual(seqs(c.take(m('dm:a:b', 3))), [], 'held once');
  assert.deepEqual(seqs(c.take(m('dm:a:b', 2))), [2, 3], 'the gap filled releases it');
  assert.equal(c.cursor('dm:a:b'), 3);
  assert.equal(c.hasGap('dm:a:b'), false);
  assert.deepEqual(seqs(c.take(m('g:1', 1))), [1], 'conversations are independent');
});

test('a sync cursor ends gaps the log will never fill (a group joined at seq 5)', () => {
  const c = new Cursors();
  assert.deepEqual(seqs(c.take(m('g:1', 6))), []);
  assert.deepEqual(seqs(c.take(m('g:1', 5))), []);
  assert.deepEqual(seqs(c.advance('g:1', 5)), [5, 6], 'up to 5, then 6 which follows');
  assert.equal(c.hasGap('g:1'), false);
  assert.deepEqual(c.since(), { 'g:1': 6 });
  assert.deepEqual(c.advance('g:1', 4), [], 'cursors never move back');
});

test('cursors survive a round trip through storage; held messages come again by sync', () => {
  const c = new Cursors();
  c.take(m('dm:a:b', 1));
  c.take(m('dm:a:b', 4));
  const back = Cursors.from(JSON.parse(JSON.stringify(c)));
  assert.deepEqual(back.since(), { 'dm:a:b': 1 });
  assert.deepEqual(seqs(back.take(m('dm:a:b', 1))), []);
  assert.deepEqual(seqs(back.take(m('dm:a:b', 2))), [2]);
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
