// @ts-check
// Every action of the protocol through the SDK, against a real messenger-local, every frame
// checked against docs/asyncapi.yaml.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ACTIONS, MessengerClient, MessengerError, applyEntry, isAmendment } from '../src/index.js';
import { frameSchemas, loadSpec } from '../../scripts/spec.mjs';
import { Gateway, checkedWebSocket, inbox, withTimeout } from './support.js';

test('the SDK has one method for every action in docs/asyncapi.yaml', () => {
  const specActions = [...frameSchemas(loadSpec(), 'ClientFrame', 'action').keys()].sort();
  assert.deepEqual(Object.keys(ACTIONS).sort(), specActions);
  for (const method of Object.values(ACTIONS)) {
    assert.equal(typeof (/** @type {any} */ (MessengerClient.prototype)[method]), 'function', method);
  }
});

test('groups, receipts, history, inbox, presence, push registration and errors', async (t) => {
  const gw = await Gateway.start();
  t.after(() => gw.stop());
  const sockets = [checkedWebSocket(), checkedWebSocket(), checkedWebSocket()];
  const [alice, bob, carol] = ['alice', 'bob', 'carol'].map(
    (user, i) => new MessengerClient({ url: gw.url, token: gw.tokens(user, 'web'), WebSocket: sockets[i].WebSocket }),
  );
  t.after(() => Promise.all([alice.close(), bob.close(), carol.close()]));
  await withTimeout(Promise.all([alice.connect(), bob.connect(), carol.connect()]), 'all online');
  const bobs = inbox(bob);

  const group = await alice.createGroup({ name: 'Trip', members: ['bob'] });
  assert.equal(group.type, 'group');
  assert.deepEqual(group.members, [{ user: 'alice', role: 'admin' }, { user: 'bob', role: 'member' }]);
  const g = group.conversation;
  await bobs.until(1, 'bob sees the group created');
  assert.deepEqual(bobs.messages[0].event, { type: 'group_created', name: 'Trip', members: ['alice', 'bob'] });
  // Alice is no contact of bob's: the group is a message request to him until he accepts it
  // (no receipts from him before that).
  const bobsRequests = await bob.conversations({ folder: 'requests' });
  assert.deepEqual([bobsRequests.requests, bobsRequests.conversations.map((c) => [c.conversation, c.request])], [1, [[g, true]]]);
  assert.equal((await bob.accept(g)).state, 'accepted');

  const read = alice.once('receipt', (r) => r.kind === 'read' && r.by === 'bob');
  const sent = await alice.send({ conversation: g, body: 'hello group' });
  await bobs.until(2, 'bob has the message');
  await bob.markRead(g, sent.seq);
  assert.deepEqual(await withTimeout(read, 'alice gets the read receipt'), {
    type: 'receipt', conversation: g, seq: sent.seq, kind: 'read', by: 'bob',
  });
  // Everyone's pointers ("message info"): bob has read alice's message.
  const state = await alice.receipts(g);
  assert.equal(state.type, 'receipts');
  assert.deepEqual(state.members.find((m) => m.user === 'bob'), { user: 'bob', delivered: sent.seq, read: sent.seq });
  assert.deepEqual([state.delivered, state.read], [sent.seq, sent.seq]);

  assert.equal((await alice.addMembers(g, ['carol'])).members.length, 3);
  assert.equal((await bob.renameGroup(g, 'Lisbon trip')).name, 'Lisbon trip');
  const left = await carol.leaveGroup(g);
  assert.equal(left.type, 'left');
  assert.equal((await alice.removeMembers(g, ['bob'])).members.length, 1);

  const history = await alice.history(g, { limit: 2 });
  assert.equal(history.messages.length, 2);
  assert.equal(history.more, true);
  assert.ok(history.messages[0].seq > history.messages[1].seq, 'newest first');

  await alice.send({ to: 'carol', body: 'hi carol' });
  // The same client_msg_id twice is one message.
  const twice = { to: 'carol', body: 'once', clientMsgId: 'same-key-1' };
  const [first, second] = await Promise.all([alice.send(twice), alice.send(twice)]);
  assert.equal(first, second);
  const again = await alice.send(twice);
  assert.deepEqual([again.seq, again.duplicate], [first.seq, true], 'a later retry: the original seq');
  const inbox_ = await alice.allConversations();
  assert.deepEqual(inbox_.map((c) => c.conversation).sort(), ['dm:alice:carol', g].sort());
  // Carol has not answered alice's message request: alice sees nothing of her until she does.
  assert.deepEqual((await alice.presence(['carol'])).map((p) => [p.online, p.last_seen]), [[false, null]]);
  assert.equal((await carol.accept('dm:alice:carol')).state, 'accepted');
  const presence = await alice.presence(['carol', 'stranger']);
  assert.deepEqual(presence.map((p) => [p.user, p.online]), [['carol', true], ['stranger', false]]);

  const registered = await bob.registerPush({ platform: 'fcm', token: 'fcm-token-1' });
  assert.deepEqual(registered, { id: registered.id, type: 'push_registered', device: 'web', platform: 'fcm', preview: false });
  assert.equal((await bob.unregisterPush()).type, 'push_unregistered');

  // A send refused for good: rejected, reported, and gone from the outbox.
  const failed = bob.once('sendFailed');
  await assert.rejects(bob.send({ conversation: g, body: 'still here?' }), (e) => {
    assert.ok(e instanceof MessengerError);
    assert.equal(e.code, 'forbidden');
    return true;
  });
  assert.equal((await failed).error.code, 'forbidden');
  assert.deepEqual(bob.outbox(), []);
  await assert.rejects(bob.history('g:00000000000000000000'), { code: 'forbidden' });
  await assert.rejects(bob.request(/** @type {any} */ ({ action: 'fly' })), { code: 'unknown_action' });
  // The frame the test sent on purpose is the only one outside the spec.
  const violations = sockets.flatMap((s) => s.violations);
  assert.equal(violations.length, 1, violations.join('\n'));
  assert.match(violations[0], /^sent .*"fly"/);
});

test("initialSync 'latest': a new device starts at each conversation's latest message, message requests included", async (t) => {
  const gw = await Gateway.start();
  t.after(() => gw.stop());
  const s = [checkedWebSocket(), checkedWebSocket(), checkedWebSocket()];
  const alice = new MessengerClient({ url: gw.url, token: gw.tokens('alice', 'web'), WebSocket: s[0].WebSocket });
  t.after(() => alice.close());
  await alice.connect();
  // Dave never answered: the conversation is a message request to him (his requests folder).
  for (const i of [1, 2, 3, 4, 5]) await alice.send({ to: 'dave', body: `old ${i}` });

  const latest = new MessengerClient({ url: gw.url, token: gw.tokens('dave', 'new'), WebSocket: s[1].WebSocket, initialSync: 'latest' });
  const everything = new MessengerClient({ url: gw.url, token: gw.tokens('dave', 'old'), WebSocket: s[2].WebSocket });
  t.after(() => Promise.all([latest.close(), everything.close()]));
  const [fromLatest, fromEverything] = [inbox(latest), inbox(everything)];
  await withTimeout(Promise.all([latest.connect(), everything.connect()]), 'both online');
  assert.equal(latest.cursor('dm:alice:dave'), 5);
  assert.deepEqual(fromLatest.messages, [], 'no backlog');
  assert.equal(fromEverything.messages.length, 5, 'the whole log');
  await alice.send({ to: 'dave', body: 'new' });
  await fromLatest.until(1, 'the new message');
  await fromEverything.until(6, 'the new message');
  assert.deepEqual(fromLatest.messages.map((m) => [m.seq, m.body]), [[6, 'new']]);
  assert.deepEqual(s.flatMap((x) => x.violations), []);
});

test('typing, replies, edit, delete, reactions, the inbox and mute through the SDK', async (t) => {
  const gw = await Gateway.start();
  t.after(() => gw.stop());
  const sockets = [checkedWebSocket(), checkedWebSocket(), checkedWebSocket()];
  const [alice, bob, bobLaptop] = [['alice', 'web'], ['bob', 'web'], ['bob', 'laptop']].map(
    ([user, device], i) => new MessengerClient({ url: gw.url, token: gw.tokens(user, device), WebSocket: sockets[i].WebSocket }),
  );
  t.after(() => Promise.all([alice.close(), bob.close(), bobLaptop.close()]));
  await withTimeout(Promise.all([alice.connect(), bob.connect(), bobLaptop.connect()]), 'all online');
  const bobs = inbox(bob);
  const dm = 'dm:alice:bob';

  const first = await alice.send({ to: 'bob', body: 'dinner at 8?' });
  // Typing: bob sees it; a second one within 3 s is not even sent.
  const typing = bob.once('typing');
  assert.equal(alice.typing(dm), true);
  assert.equal(alice.typing(dm), false, 'throttled by the SDK');
  assert.deepEqual(await withTimeout(typing, 'bob sees alice typing'), { type: 'typing', conversation: dm, user: 'alice' });

  const reply = await bob.send({ conversation: dm, body: 'yes!', replyTo: first.seq });
  await bobs.until(2, 'bob has both');
  const edited = await alice.edit(dm, first.seq, 'dinner at 9?');
  assert.equal(edited.message.body, 'dinner at 9?');
  assert.ok(edited.message.edited_at);
  const reacted = await bob.react(dm, first.seq, '👍');
  assert.deepEqual(reacted.message.reactions, [{ emoji: '👍', users: ['bob'] }]);
  const unchanged = await bob.react(dm, first.seq, '👍');
  assert.equal(unchanged.unchanged, true);
  const deleted = await bob.delete(dm, reply.seq);
  assert.equal(deleted.message.deleted, true);
  await assert.rejects(bob.edit(dm, first.seq, 'mine now'), { code: 'forbidden' });
  await assert.rejects(bob.react(dm, first.seq, 'nice'), { code: 'bad_request' });

  // Bob's copy, kept current by applyEntry, matches what history says.
  await bobs.until(5, 'the edit, the reaction and the deletion reach bob');
  /** @type {Map<number, import('../src/index.js').MessageView>} */
  const held = new Map();
  for (const m of bobs.messages) applyEntry(held, m);
  const history = await bob.history(dm);
  for (const m of history.messages.filter((m) => !isAmendment(m))) {
    const { quote, ...now } = m;
    const { quote: _q, ...mine } = /** @type {import('../src/index.js').MessageView} */ (held.get(m.seq));
    assert.deepEqual(mine, now, `message ${m.seq}`);
  }
  assert.equal(held.get(first.seq)?.body, 'dinner at 9?');
  assert.equal(held.get(reply.seq)?.deleted, true);

  // The inbox: unread counts what a person would; mute shows on bob's other device.
  // Bob's reply is unread for alice (deleted or not); the edit and the reaction are not counted.
  const page = await alice.conversations();
  assert.deepEqual(page.conversations.map((c) => [c.conversation, c.unread, c.muted]), [[dm, 1, false]]);
  assert.equal(page.unread_total, 1);
  const mutedElsewhere = bobLaptop.once('muted');
  const muted = await bob.mute(dm);
  assert.deepEqual([muted.type, muted.muted], ['muted', true]);
  assert.deepEqual(await withTimeout(mutedElsewhere, 'the laptop hears of it'), { type: 'muted', conversation: dm, muted: true });
  assert.equal((await bob.allConversations())[0].muted, true);
  assert.equal((await bob.unmute(dm)).muted, false);
  assert.deepEqual(sockets.flatMap((s) => s.violations), []);
});

test('block, the blocked list, report and unblock through the SDK: a blocked user is refused and never told', async (t) => {
  const gw = await Gateway.start();
  t.after(() => gw.stop());
  const sockets = [checkedWebSocket(), checkedWebSocket(), checkedWebSocket()];
  const [alice, laptop, mallory] = [['alice', 'web'], ['alice', 'laptop'], ['mallory', 'web']].map(
    ([user, device], i) => new MessengerClient({ url: gw.url, token: gw.tokens(user, device), WebSocket: sockets[i].WebSocket }),
  );
  t.after(() => Promise.all([alice.close(), laptop.close(), mallory.close()]));
  await withTimeout(Promise.all([alice.connect(), laptop.connect(), mallory.connect()]), 'all online');
  /** @type {unknown[]} */
  const toldMallory = [];
  mallory.on('blockState', (f) => toldMallory.push(f));
  await mallory.send({ to: 'alice', body: 'hi, want cheap watches?' });

  const elsewhere = laptop.once('blockState');
  const state = await alice.block('mallory');
  assert.deepEqual([state.type, state.user, state.blocked], ['block_state', 'mallory', true]);
  assert.deepEqual(await withTimeout(elsewhere, 'the laptop hears of it'), { type: 'block_state', user: 'mallory', blocked: true });
  const list = await alice.blocked();
  assert.deepEqual([list.users.map((b) => b.user), list.more], [['mallory'], false]);

  // Mallory's message fails for good, with the words Messenger uses.
  const failed = mallory.once('sendFailed');
  await assert.rejects(mallory.send({ to: 'alice', body: 'hello?' }), { code: 'forbidden', message: "you can't message this user" });
  const { error } = await withTimeout(failed, 'the outbox gives up');
  assert.equal(error.code, 'forbidden');

  // Alice reports mallory's earlier message (sent before the block): once a day.
  const reported = await alice.report('dm:alice:mallory', 1, 'spam', 'a stranger');
  assert.deepEqual([reported.type, reported.seq, reported.duplicate], ['reported', 1, undefined]);
  assert.equal((await alice.report('dm:alice:mallory', 1, 'spam')).duplicate, true);

  assert.equal((await alice.unblock('mallory')).blocked, false);
  assert.deepEqual((await alice.blocked()).users, []);
  const sent = await mallory.send({ to: 'alice', body: 'hello again' });
  assert.equal(sent.seq, 2, 'nothing refused was stored');
  assert.deepEqual(toldMallory, []);
  assert.deepEqual(sockets.flatMap((s) => s.violations), []);
});

test('a photo through upload, send, the live message and download', async (t) => {
  const gw = await Gateway.start();
  t.after(() => gw.stop());
  const sockets = [checkedWebSocket(), checkedWebSocket()];
  const [alice, bob] = ['alice', 'bob'].map(
    (user, i) => new MessengerClient({ url: gw.url, token: gw.tokens(user, 'web'), WebSocket: sockets[i].WebSocket }),
  );
  t.after(() => Promise.all([alice.close(), bob.close()]));
  await withTimeout(Promise.all([alice.connect(), bob.connect()]), 'both online');
  const bobs = inbox(bob);
  const bytes = new Uint8Array(300_000).map((_, i) => (i * 31) % 251);
  const file = new Blob([bytes], { type: 'image/png' });

  const { attachment, conversation } = await alice.upload({ to: 'bob', file, name: 'dot.png', clientMsgId: 'p-1', width: 10, height: 10 });
  assert.equal(conversation, 'dm:alice:bob');
  const sent = await alice.send({ to: 'bob', clientMsgId: 'p-1', attachments: [attachment] });
  await bobs.until(1, 'bob has the photo');
  const [got] = bobs.messages[0].attachments ?? [];
  assert.deepEqual([got.id, got.content_type, got.size, got.name, got.width], [attachment, 'image/png', bytes.length, 'dot.png', 10]);
  const downloaded = new Uint8Array(await (await fetch(/** @type {string} */ (got.url))).arrayBuffer());
  assert.deepEqual(downloaded, bytes);
  const fresh = await bob.download(conversation, sent.seq);
  assert.equal(fresh.attachments[0].id, attachment);

  // The store refuses a type the server does not accept, before any byte moves.
  await assert.rejects(
    alice.upload({ to: 'bob', file: new Blob(['<p>'], { type: 'text/html' }), name: 'x.html', clientMsgId: 'p-2' }),
    { code: 'bad_request' },
  );
});

test('message requests through the SDK: the requests folder, accept and decline, on every device of the recipient', async (t) => {
  const gw = await Gateway.start();
  t.after(() => gw.stop());
  const sockets = [checkedWebSocket(), checkedWebSocket(), checkedWebSocket(), checkedWebSocket()];
  const [alice, laptop, bob, mallory] = [['alice', 'web'], ['alice', 'laptop'], ['bob', 'web'], ['mallory', 'web']].map(
    ([user, device], i) => new MessengerClient({ url: gw.url, token: gw.tokens(user, device), WebSocket: sockets[i].WebSocket }),
  );
  t.after(() => Promise.all([alice.close(), laptop.close(), bob.close(), mallory.close()]));
  await withTimeout(Promise.all([alice.connect(), laptop.connect(), bob.connect(), mallory.connect()]), 'all online');
  /** @type {unknown[]} */
  const toldSenders = [];
  for (const sender of [bob, mallory]) sender.on('requestState', (f) => toldSenders.push(f));
  const [bobDm, malloryDm] = ['dm:alice:bob', 'dm:alice:mallory'];
  const alices = inbox(alice);
  await bob.send({ to: 'alice', body: 'hi, Bob from the climbing gym' });
  await mallory.send({ to: 'alice', body: 'cheap watches' });
  await alices.until(2, 'both requests reach alice live');

  // Both wait in alice's requests folder: not in her inbox, not in her badge.
  const inboxPage = await alice.conversations();
  assert.deepEqual([inboxPage.conversations, inboxPage.requests, inboxPage.unread_total], [[], 2, 0]);
  const requests = await alice.allConversations({ folder: 'requests' });
  assert.deepEqual(requests.map((c) => [c.conversation, c.request, c.unread]).sort(), [[bobDm, true, 1], [malloryDm, true, 1]]);
  // The sender's own line is awaiting, and alice's presence and read state stay hidden from him.
  assert.deepEqual((await bob.allConversations()).map((c) => [c.conversation, c.awaiting]), [[bobDm, true]]);
  await alice.markRead(bobDm, 1);
  assert.deepEqual((await bob.receipts(bobDm)).members.find((m) => m.user === 'alice'), { user: 'alice', delivered: 0, read: 0 });
  assert.deepEqual((await bob.presence(['alice'])).map((p) => [p.online, p.last_seen]), [[false, null]]);

  // Accept: answered, and alice's laptop hears of it; bob is not told, but now sees her.
  const elsewhere = laptop.once('requestState');
  const accepted = await alice.accept(bobDm);
  assert.deepEqual([accepted.type, accepted.conversation, accepted.state], ['request_state', bobDm, 'accepted']);
  assert.deepEqual(await withTimeout(elsewhere, 'the laptop hears of it'), { type: 'request_state', conversation: bobDm, state: 'accepted' });
  const afterAccept = await alice.conversations();
  assert.deepEqual([afterAccept.conversations.map((c) => [c.conversation, c.request]), afterAccept.requests], [[[bobDm, undefined]], 1]);
  assert.deepEqual((await bob.allConversations()).map((c) => [c.conversation, c.awaiting]), [[bobDm, undefined]]);
  assert.equal((await bob.receipts(bobDm)).members.find((m) => m.user === 'alice')?.read, 1, 'the read pointer it hid');
  assert.equal((await bob.presence(['alice']))[0].online, true);

  // Decline: in neither folder; mallory's next message is refused with the words a block gets.
  const declined = await alice.decline(malloryDm);
  assert.deepEqual([declined.conversation, declined.state], [malloryDm, 'declined']);
  const afterDecline = await alice.conversations({ folder: 'requests' });
  assert.deepEqual([afterDecline.conversations, afterDecline.requests], [[], 0]);
  assert.deepEqual((await alice.allConversations()).map((c) => c.conversation), [bobDm]);
  await assert.rejects(mallory.send({ to: 'alice', body: 'hello??' }), { code: 'forbidden', message: "you can't message this user" });
  // Declining what is no request is a bad request; so is declining a group (leave it instead).
  await assert.rejects(alice.decline(bobDm), { code: 'bad_request' });
  const deals = await mallory.createGroup({ name: 'Deals', members: ['alice'] });
  assert.deepEqual((await alice.allConversations({ folder: 'requests' })).map((c) => [c.conversation, c.kind, c.request]), [[deals.conversation, 'group', true]]);
  await assert.rejects(alice.decline(deals.conversation), { code: 'bad_request' });
  assert.equal((await alice.leaveGroup(deals.conversation)).type, 'left');
  assert.equal((await alice.conversations()).requests, 0);
  assert.deepEqual(toldSenders, [], 'senders are never told');
  assert.deepEqual(sockets.flatMap((s) => s.violations), []);
});
