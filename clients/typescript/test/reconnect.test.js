// @ts-check
// Against a real messenger-local: the outbox, sync and de-duplication across dropped connections.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MessengerClient, MemoryStorage } from '../src/index.js';
import { Gateway, checkedWebSocket, inbox, withTimeout } from './support.js';

const range = (/** @type {number} */ n) => Array.from({ length: n }, (_, i) => i + 1);

test('a reconnect in the middle of a burst loses and duplicates nothing', async (t) => {
  const gw = await Gateway.start();
  t.after(() => gw.stop());
  const a = checkedWebSocket();
  const b = checkedWebSocket();
  const options = { url: gw.url, reconnectMinMs: 50, reconnectMaxMs: 200 };
  const alice = new MessengerClient({ ...options, token: gw.tokens('alice', 'laptop'), WebSocket: a.WebSocket });
  const bob = new MessengerClient({ ...options, token: gw.tokens('bob', 'phone'), WebSocket: b.WebSocket });
  t.after(() => Promise.all([alice.close(), bob.close()]));
  await withTimeout(Promise.all([alice.connect(), bob.connect()]), 'both online');
  const bobs = inbox(bob);
  const alices = inbox(alice);

  const N = 60;
  // Alice's connection drops after her 20th message is stored (the 21st is then in flight);
  // bob's after he has received 30.
  let stored = 0;
  alice.on('sent', () => {
    if (++stored === 20) a.cut();
  });
  bob.on('message', () => {
    if (bobs.messages.length === 30) b.cut();
  });
  const sends = range(N).map((i) => alice.send({ to: 'bob', body: `m${i}` }));
  const sent = await withTimeout(Promise.all(sends), 'every send stored');
  await bobs.until(N, 'bob has every message');

  assert.ok(a.sockets.length >= 2 && b.sockets.length >= 2, 'both reconnected');
  assert.deepEqual(sent.map((s) => s.seq), range(N), 'stored once each, in the order sent');
  assert.equal(new Set(sent.map((s) => s.client_msg_id)).size, N);
  assert.equal(await bob.sync(), 0, 'a further sync finds nothing bob lacks');
  assert.deepEqual(
    bobs.messages.map((m) => [m.seq, m.body]),
    range(N).map((i) => [i, `m${i}`]),
    'each once, in order',
  );
  assert.deepEqual(alices.messages.map((m) => m.seq), range(N), "alice's own, once each, in order");
  assert.equal(alice.outbox().length, 0);

  // The log itself: a new device of bob's syncs exactly the 60 messages.
  const c = checkedWebSocket();
  const fresh = new MessengerClient({ ...options, token: gw.tokens('bob', 'tablet'), WebSocket: c.WebSocket, storage: new MemoryStorage() });
  t.after(() => fresh.close());
  const fresh_ = inbox(fresh);
  await withTimeout(fresh.connect(), 'the new device online');
  assert.deepEqual(fresh_.messages.map((m) => m.seq), range(N));
  assert.deepEqual([...a.violations, ...b.violations, ...c.violations], [], 'every frame as docs/asyncapi.yaml says');
});

test('a gateway restart is survived (over DynamoDB, which outlives the process)', async (t) => {
  const endpoint = process.env.MESSENGER_DYNAMODB_ENDPOINT;
  assert.ok(
    endpoint,
    'MESSENGER_DYNAMODB_ENDPOINT: this test needs MiniStack (tests/run.sh starts one; by hand: ' +
      'export MESSENGER_DYNAMODB_ENDPOINT=$(localstack/ministack start))',
  );
  const prefix = `sdk-${process.pid}-${Date.now()}-`;
  const gw = await Gateway.start([
    '--store', 'dynamodb', '--dynamodb-endpoint', endpoint, '--table-prefix', prefix, '--create-tables',
  ]);
  t.after(() => gw.stop());
  const a = checkedWebSocket();
  const b = checkedWebSocket();
  const options = { url: gw.url, reconnectMinMs: 100, reconnectMaxMs: 500 };
  const aliceTokens = gw.tokens('alice', 'laptop');
  const alice = new MessengerClient({ ...options, token: aliceTokens, WebSocket: a.WebSocket });
  const bob = new MessengerClient({ ...options, token: gw.tokens('bob', 'phone'), WebSocket: b.WebSocket });
  t.after(() => Promise.all([alice.close(), bob.close()]));
  /** @type {Error[]} */
  const errors = [];
  alice.on('error', (e) => errors.push(e));
  await withTimeout(Promise.all([alice.connect(), bob.connect()]), 'both online');
  const bobs = inbox(bob);
  const alices = inbox(alice);
  await alice.send({ to: 'bob', body: 'before' });
  await bobs.until(1, 'bob has "before"');

  const down = Promise.all([alice.once('disconnect'), bob.once('disconnect')]);
  await gw.stop();
  await withTimeout(down, 'both see the gateway go');
  const during = [alice.send({ to: 'bob', body: 'during 1' }), alice.send({ to: 'bob', body: 'during 2' })];
  const retried = alice.once('error');
  await withTimeout(retried, 'alice fails to reconnect while the gateway is down');
  await gw.start();

  const sent = await withTimeout(Promise.all(during), 'the queued sends stored after the restart');
  await bobs.until(3, 'bob has the messages sent while the gateway was down');
  assert.deepEqual(sent.map((s) => s.seq), [2, 3]);
  assert.deepEqual(bobs.messages.map((m) => m.body), ['before', 'during 1', 'during 2']);
  await bob.send({ conversation: 'dm:alice:bob', body: 'back' });
  await alices.until(4, 'alice has bob\'s answer');
  assert.deepEqual(alices.messages.map((m) => [m.seq, m.body]), [[1, 'before'], [2, 'during 1'], [3, 'during 2'], [4, 'back']]);
  assert.ok(aliceTokens.calls >= 2, 'the token provider is asked again on reconnect');
  assert.ok(errors.length >= 1, 'the failed attempts were reported');
  assert.deepEqual([...a.violations, ...b.violations], []);
});
