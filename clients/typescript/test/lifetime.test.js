// @ts-check
// Against a real messenger-local with short limits: the 2-hour close and the idle close.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MessengerClient } from '../src/index.js';
import { Gateway, checkedWebSocket, inbox, withTimeout } from './support.js';

test('the 2-hour close is survived (--max-connection-secs 2)', async (t) => {
  const gw = await Gateway.start(['--max-connection-secs', '2']);
  t.after(() => gw.stop());
  const a = checkedWebSocket();
  const b = checkedWebSocket();
  const options = { url: gw.url, reconnectMinMs: 50, reconnectMaxMs: 500 };
  const aliceTokens = gw.tokens('alice', 'laptop');
  const alice = new MessengerClient({ ...options, token: aliceTokens, WebSocket: a.WebSocket });
  const bob = new MessengerClient({ ...options, token: gw.tokens('bob', 'phone'), WebSocket: b.WebSocket });
  t.after(() => Promise.all([alice.close(), bob.close()]));
  await withTimeout(Promise.all([alice.connect(), bob.connect()]), 'both online');
  const bobs = inbox(bob);

  for (const round of [1, 2, 3]) {
    const closed = alice.once('disconnect');
    const back = alice.once('synced');
    assert.equal((await withTimeout(closed, `close ${round}`)).code, 1001, 'closed by the gateway');
    await withTimeout(back, `online again after close ${round}`);
    await alice.send({ to: 'bob', body: `round ${round}` });
  }
  await bobs.until(3, 'bob has every round');
  assert.deepEqual(bobs.messages.map((m) => m.body), ['round 1', 'round 2', 'round 3']);
  assert.ok(aliceTokens.calls >= 4, `a token per connection (${aliceTokens.calls})`);
  assert.deepEqual([...a.violations, ...b.violations], []);
});

test('heartbeats keep an idle connection open (--idle-timeout-secs 2)', async (t) => {
  const gw = await Gateway.start(['--idle-timeout-secs', '2']);
  t.after(() => gw.stop());
  let heartbeats = 0;
  /** @type {() => void} */
  let eightBeats = () => {};
  const beaten = new Promise((resolve) => (eightBeats = () => resolve(undefined)));
  const q = checkedWebSocket();
  const h = checkedWebSocket((f) => {
    if (f.action === 'heartbeat' && ++heartbeats === 8) eightBeats();
  });
  const quiet = new MessengerClient({ url: gw.url, token: gw.tokens('carol', 'quiet'), WebSocket: q.WebSocket, heartbeatMs: 0 });
  const beating = new MessengerClient({ url: gw.url, token: gw.tokens('dave', 'beating'), WebSocket: h.WebSocket, heartbeatMs: 300 });
  t.after(() => Promise.all([quiet.close(), beating.close()]));
  let drops = 0;
  beating.on('disconnect', () => drops++);
  /** @type {any[]} */
  const received = [];
  beating.on('frame', (f) => received.push(f));
  await withTimeout(Promise.all([quiet.connect(), beating.connect()]), 'both online');

  const closed = await withTimeout(quiet.once('disconnect'), 'the idle close of the quiet client');
  assert.equal(closed.code, 1001);
  await withTimeout(beaten, 'eight heartbeats sent (2.4 s, past the idle timeout)');
  assert.equal(drops, 0, 'the heartbeating client was never closed');
  // A heartbeat is never answered: the beating client got nothing but its connect-time sync.
  assert.deepEqual(received.map((f) => f.type), ['sync']);
  assert.deepEqual([...q.violations, ...h.violations], []);
});

test('reconnect() drops the connection and is back online at once, asking for a new token', async (t) => {
  const gw = await Gateway.start();
  t.after(() => gw.stop());
  const s = checkedWebSocket();
  const tokens = gw.tokens('erin', 'web');
  const erin = new MessengerClient({ url: gw.url, token: tokens, WebSocket: s.WebSocket, reconnectMinMs: 60_000 });
  t.after(() => erin.close());
  await withTimeout(erin.connect(), 'online');
  const dropped = erin.once('disconnect');
  const back = erin.once('synced');
  erin.reconnect();
  assert.equal((await dropped).code, 4001);
  // A backoff of up to 60 s would outlast the hang guard: reconnect() does not wait.
  await withTimeout(back, 'online again');
  assert.equal(tokens.calls, 2);
  assert.equal(s.sockets.length, 2);
  assert.equal(erin.state, 'online');
});

test('a client pushed off past the per-user connection cap stops instead of reconnecting (--max-connections-per-user 1)', async (t) => {
  const gw = await Gateway.start(['--max-connections-per-user', '1']);
  t.after(() => gw.stop());
  const p = checkedWebSocket();
  const l = checkedWebSocket();
  const b = checkedWebSocket();
  const options = { url: gw.url, reconnectMinMs: 50, reconnectMaxMs: 500 };
  const phone = new MessengerClient({ ...options, token: gw.tokens('erin', 'phone'), WebSocket: p.WebSocket });
  const laptop = new MessengerClient({ ...options, token: gw.tokens('erin', 'laptop'), WebSocket: l.WebSocket });
  const bob = new MessengerClient({ ...options, token: gw.tokens('bob', 'phone'), WebSocket: b.WebSocket });
  t.after(() => Promise.all([phone.close(), laptop.close(), bob.close()]));
  await withTimeout(Promise.all([phone.connect(), bob.connect()]), 'phone and bob online');
  let laptopDrops = 0;
  laptop.on('disconnect', () => laptopDrops++);

  const replaced = phone.once('replaced');
  const phoneClosed = phone.once('state', (s) => s === 'closed');
  await withTimeout(laptop.connect(), 'the laptop online');
  assert.deepEqual(await withTimeout(replaced, 'the phone is told'), { reason: 'too_many_connections' });
  await withTimeout(phoneClosed, 'the phone stops');
  // The laptop keeps its connection: a message reaches bob through it, and it was never closed.
  const bobs = inbox(bob);
  await laptop.send({ to: 'bob', body: 'from the laptop' });
  await bobs.until(1, 'bob has it');
  assert.equal(laptopDrops, 0, 'the phone did not reconnect and push the laptop off');
  assert.equal(phone.state, 'closed');
  assert.deepEqual([...p.violations, ...l.violations, ...b.violations], []);
});
