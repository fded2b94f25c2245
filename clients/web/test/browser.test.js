// @ts-check
// The web app in a real browser: Debian's Chromium, headless, driven by playwright-core (which
// never downloads a browser of its own here: it is given the executable). Two browser contexts
// (two people, two windows) sign in against a real messenger-local, chat 1:1 both ways, then in
// a group, and answer message requests; screenshots of both windows at the end.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { chromium } from 'playwright-core';
import { MessengerClient } from '@messenger/client';
import { Gateway, WAIT_MS } from '../../typescript/test/support.js';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
// Screenshots go to test-results/ (gitignored); `npm run screenshots` writes the ones the README
// shows, under docs/.
const SHOTS = process.env.MESSENGER_SCREENSHOTS ?? fileURLToPath(new URL('../test-results/', import.meta.url));
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * A signed-in window.
 * @param {import('playwright-core').Browser} browser
 * @param {string} base
 * @param {string} user
 * @param {string} device
 * @param {string[]} errors
 */
async function signIn(browser, base, user, device, errors) {
  const context = await browser.newContext({ viewport: { width: 960, height: 600 } });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  page.on('pageerror', (e) => errors.push(`${user}: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && errors.push(`${user}: ${m.text()}`));
  await page.goto(`${base}/`);
  await page.fill('#signin-form input[name=user]', user);
  await page.fill('#signin-form input[name=device]', device);
  await page.click('#signin-form button[type=submit]');
  await page.locator('#status[data-state=online]').waitFor();
  return page;
}

/** @param {import('playwright-core').Page} page @param {string} text */
async function say(page, text) {
  await page.fill('#composer input[name=body]', text);
  await page.press('#composer input[name=body]', 'Enter');
}

/** @param {import('playwright-core').Page} page @param {string} text */
function message(page, text) {
  return page.locator('#message-list li.message', { hasText: text });
}

/**
 * Opens a message request from the Requests folder.
 * @param {import('playwright-core').Page} page @param {string} conversation
 */
async function openRequest(page, conversation) {
  await page.click('#tab-requests');
  await page.locator(`#requests li[data-conversation="${conversation}"]`).click();
}

/** @param {import('node:test').TestContext} t */
async function launch(t) {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
  t.after(() => browser.close());
  return browser;
}

test('two people sign in in two browser windows and chat, 1:1 and in a group', async (t) => {
  const gw = await Gateway.start();
  t.after(() => gw.stop());
  const browser = await launch(t);
  /** @type {string[]} */
  const errors = [];
  const alice = await signIn(browser, gw.http, 'alice', 'laptop', errors);
  const bob = await signIn(browser, gw.http, 'bob', 'phone', errors);

  // Alice starts a chat with Bob. They never talked: her first message is a message request to
  // him, and her window says he has not accepted it yet.
  await alice.fill('#new-chat input[name=user]', 'bob');
  await alice.click('#new-chat button');
  await say(alice, 'Hi Bob! Lunch today?');
  await message(alice, 'Lunch today?').locator('.mark').waitFor();
  await alice.locator('#request-bar[data-state=awaiting]', { hasText: "bob hasn't accepted your message request" }).waitFor();

  // Bob's Requests folder (not his inbox) shows it unread; he opens it, which marks it read,
  // and answers, which accepts it: it moves to his inbox.
  await bob.locator('#requests-count', { hasText: '1' }).waitFor();
  await bob.click('#tab-requests');
  const bobsRequest = bob.locator('#requests li[data-conversation="dm:alice:bob"]');
  await bobsRequest.locator('.unread', { hasText: '1' }).waitFor();
  assert.equal(await bob.locator('#inbox li[data-conversation="dm:alice:bob"]').count(), 0, 'not in his inbox yet');
  await bobsRequest.click();
  await message(bob, 'Lunch today?').waitFor();
  await bob.locator('#request-bar[data-state=request]', { hasText: 'Replying accepts' }).waitFor();
  await say(bob, 'Sure, 12:30 at the usual place.');
  await bob.locator('#inbox li[data-conversation="dm:alice:bob"]').waitFor();
  await bob.locator('#request-bar').waitFor({ state: 'hidden' });
  assert.equal(await bob.locator('#requests li').count(), 0, 'out of his requests');
  assert.equal(await bob.locator('#requests-count').isHidden(), true);

  // Alice sees the answer, and her message marked read by Bob (hidden until he accepted).
  await message(alice, '12:30 at the usual place').waitFor();
  await message(alice, 'Lunch today?').locator('.mark[data-state=read]').waitFor();
  await alice.locator('#request-bar').waitFor({ state: 'hidden' });
  assert.equal(await bob.locator('#chat-subtitle').textContent(), 'online', "bob sees alice's presence");

  // A group: Alice creates it with Bob; both write in it.
  await alice.click('#new-group summary');
  await alice.fill('#new-group-form input[name=group]', 'Lisbon trip');
  await alice.fill('#new-group-form input[name=members]', 'bob');
  await alice.click('#new-group-form button');
  await alice.locator('#message-list li.system', { hasText: 'created the group' }).waitFor();
  await say(alice, 'Flights are booked for Friday.');
  const bobsGroup = bob.locator('#inbox li', { hasText: 'Lisbon trip' });
  // One unread: the message (the group's creation is not counted).
  await bobsGroup.locator('.unread', { hasText: '1' }).waitFor();
  await bobsGroup.click();
  await message(bob, 'Flights are booked').waitFor();
  await say(bob, 'Great, I will bring the guidebook.');
  await message(alice, 'bring the guidebook').waitFor();
  await message(alice, 'Flights are booked').locator('.mark[data-state=read]').waitFor();
  // Bob's 1:1 chat with alice is read: no unread badge left anywhere in his inbox.
  assert.equal(await bob.locator('#inbox .unread:not([hidden])').count(), 0);

  mkdirSync(SHOTS, { recursive: true });
  await alice.locator('#inbox li[data-conversation="dm:alice:bob"]').click();
  await message(alice, '12:30').waitFor();
  await alice.screenshot({ path: `${SHOTS}/web-alice.png` });
  await bob.screenshot({ path: `${SHOTS}/web-bob.png` });
  assert.deepEqual(errors, [], 'no errors in either page');
});

test('messages sent while away show as unread, and older ones load on scroll-back', async (t) => {
  const gw = await Gateway.start();
  t.after(() => gw.stop());
  // Alice writes 45 messages (through the SDK) before Carol ever signs in.
  const alice = new MessengerClient({ url: String(gw.url), token: gw.tokens('alice', 'node') });
  t.after(() => alice.close());
  await alice.connect();
  await Promise.all(Array.from({ length: 45 }, (_, i) => alice.send({ to: 'carol', body: `note ${i + 1}` })));
  // Carol knows alice: she accepted the conversation on her phone (a message request otherwise).
  const phone = new MessengerClient({ url: String(gw.url), token: gw.tokens('carol', 'phone'), ackDelivered: false });
  t.after(() => phone.close());
  await phone.connect();
  assert.equal((await phone.accept('dm:alice:carol')).state, 'accepted');

  const browser = await launch(t);
  /** @type {string[]} */
  const errors = [];
  const carol = await signIn(browser, gw.http, 'carol', 'laptop', errors);
  const chat = carol.locator('#inbox li[data-conversation="dm:alice:carol"]');
  await chat.locator('.unread', { hasText: '45' }).waitFor();
  await chat.click();
  await message(carol, 'note 45').waitFor();
  assert.equal(await carol.locator('#message-list li.message').count(), 30, 'the newest page');
  // Scrolling to the top loads the older page (the "Load older" button does too).
  await carol.locator('#older').waitFor();
  await carol.locator('#messages').evaluate((list) => list.scrollTo(0, 0));
  await carol.locator('#message-list .body', { hasText: /^note 1$/ }).waitFor();
  assert.equal(await carol.locator('#message-list li.message').count(), 45);
  await carol.locator('#older').waitFor({ state: 'hidden' });
  assert.equal(await chat.locator('.unread').isHidden(), true, 'read once opened');
  assert.deepEqual(errors, []);
});

test('typing shows, and replies, reactions, edits, deletions, mute, blocking and reporting work across two windows', async (t) => {
  const gw = await Gateway.start();
  t.after(() => gw.stop());
  const browser = await launch(t);
  /** @type {string[]} */
  const errors = [];
  const alice = await signIn(browser, gw.http, 'alice', 'laptop', errors);
  const bob = await signIn(browser, gw.http, 'bob', 'phone', errors);
  await alice.fill('#new-chat input[name=user]', 'bob');
  await alice.click('#new-chat button');
  await say(alice, 'Dinner at 8?');
  await message(alice, 'Dinner at 8?').locator('.mark').waitFor();
  // A message request to bob: he sees it (and alice typing) before he accepts.
  await openRequest(bob, 'dm:alice:bob');
  await message(bob, 'Dinner at 8?').waitFor();

  // Alice types: bob's header says so.
  await alice.type('#composer input[name=body]', 'hm');
  await bob.locator('#chat-subtitle', { hasText: 'alice is typing' }).waitFor();
  await alice.fill('#composer input[name=body]', '');

  // Bob reacts and replies; alice sees both.
  await message(bob, 'Dinner at 8?').locator('.action.react').click();
  await message(alice, 'Dinner at 8?').locator('.reaction', { hasText: '👍 1' }).waitFor();
  await message(bob, 'Dinner at 8?').locator('.action.reply').click();
  await bob.locator('#compose-mode', { hasText: 'Replying to alice' }).waitFor();
  await say(bob, 'Make it 9');
  await message(alice, 'Make it 9').locator('.quote', { hasText: 'Dinner at 8?' }).waitFor();
  // His reply accepted alice's request: the conversation is in his inbox now.
  await bob.locator('#inbox li[data-conversation="dm:alice:bob"]').waitFor();

  // Alice edits her message, then deletes it: bob's window follows, quote included.
  await message(alice, 'Dinner at 8?').locator('.action.edit').click();
  await alice.fill('#composer input[name=body]', 'Dinner at 9?');
  await alice.press('#composer input[name=body]', 'Enter');
  await message(bob, 'Dinner at 9?').locator('.edited').waitFor();
  await message(alice, 'Dinner at 9?').locator('.action.delete').click();
  await bob.locator('#message-list li.message.deleted', { hasText: 'Message deleted' }).waitFor();
  await message(bob, 'Make it 9').locator('.quote', { hasText: 'Message deleted' }).waitFor();

  // Bob mutes the conversation: his inbox shows it.
  await bob.click('#mute');
  await bob.locator('#inbox li[data-conversation="dm:alice:bob"] .name', { hasText: '🔕' }).waitFor();
  assert.equal(await bob.locator('#mute').textContent(), 'Unmute');

  // Bob blocks alice: her next message is refused and never reaches him; unblocking undoes it.
  await bob.click('#block');
  await bob.locator('#block', { hasText: 'Unblock' }).waitFor();
  await say(alice, 'Are you there?');
  await alice.locator('#message-list li.notice', { hasText: 'not sent (forbidden)' }).waitFor();
  await bob.click('#block');
  await bob.locator('#block', { hasText: /^Block$/ }).waitFor();
  await say(alice, 'Hello again');
  await message(bob, 'Hello again').waitFor();
  assert.equal(await message(bob, 'Are you there?').count(), 0, 'the refused message never reached bob');

  // Bob reports alice's message from its menu, giving a reason.
  bob.once('dialog', (dialog) => void dialog.accept('harassment'));
  await message(bob, 'Hello again').locator('.action.report').click();
  await bob.locator('#message-list li.notice', { hasText: 'Reported.' }).waitFor();
  assert.equal(await message(alice, 'Hello again').locator('.action.report').count(), 0, 'no report button on your own messages');
  assert.deepEqual(errors, [], 'no errors in either page');
});

test('a photo sent with the 📎 button shows in the other window', async (t) => {
  const gw = await Gateway.start();
  t.after(() => gw.stop());
  const browser = await launch(t);
  /** @type {string[]} */
  const errors = [];
  const alice = await signIn(browser, gw.http, 'alice', 'laptop', errors);
  const bob = await signIn(browser, gw.http, 'bob', 'phone', errors);
  await alice.fill('#new-chat input[name=user]', 'bob');
  await alice.click('#new-chat button');
  await say(alice, 'Look');
  // A message request to bob: its messages, photos included, reach him before he accepts.
  await openRequest(bob, 'dm:alice:bob');
  await message(bob, 'Look').waitFor();

  // A 2×2 red PNG, through the file input: upload form, POST to the gateway's files, send.
  const png = Buffer.from(
    'iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEElEQVR4nGP4z8AARAwQCgAf7gP9i18U1AAAAABJRU5ErkJggg==',
    'base64',
  );
  await alice.fill('#composer input[name=body]', 'the view');
  await alice.setInputFiles('#attach', { name: 'view.png', mimeType: 'image/png', buffer: png });
  const photo = bob.locator('#message-list li.message', { hasText: 'the view' }).locator('img.photo');
  await photo.waitFor();
  await bob.waitForFunction(
    () => [...document.querySelectorAll('img.photo')].some((i) => /** @type {HTMLImageElement} */ (i).naturalWidth === 2),
  );
  assert.equal(await photo.getAttribute('alt'), 'view.png');
  // The sender's window shows it too (its copy's URLs come from `download`).
  await alice.locator('#message-list li.message', { hasText: 'the view' }).locator('img.photo').waitFor();
  assert.deepEqual(errors, []);
});

test("a stranger's message lands in Requests: accepting moves it to the inbox, declining removes it", async (t) => {
  const gw = await Gateway.start();
  t.after(() => gw.stop());
  const [bob, mallory] = ['bob', 'mallory'].map((user) => new MessengerClient({ url: String(gw.url), token: gw.tokens(user, 'node') }));
  t.after(() => Promise.all([bob.close(), mallory.close()]));
  await Promise.all([bob.connect(), mallory.connect()]);
  const browser = await launch(t);
  /** @type {string[]} */
  const errors = [];
  const alice = await signIn(browser, gw.http, 'alice', 'laptop', errors);
  await bob.send({ to: 'alice', body: 'Hi Alice, Bob from the climbing gym' });
  await mallory.send({ to: 'alice', body: 'Cheap watches, click here' });

  // Both wait in Requests, counted on its tab; none in the inbox or in the unread badge.
  await alice.locator('#requests-count', { hasText: '2' }).waitFor();
  assert.equal(await alice.locator('#inbox li').count(), 0);
  assert.equal(await alice.title(), 'Messenger', 'requests are not in the unread badge');
  await alice.click('#tab-requests');
  const bobs = alice.locator('#requests li[data-conversation="dm:alice:bob"]');
  const mallorys = alice.locator('#requests li[data-conversation="dm:alice:mallory"]');
  await bobs.locator('.preview', { hasText: 'climbing gym' }).waitFor();
  await mallorys.locator('button.decline').waitFor();

  // Opened, a request says what its sender cannot see; and bob indeed sees alice as never seen.
  await bobs.click();
  await message(alice, 'climbing gym').waitFor();
  await alice.locator('#request-bar[data-state=request]', { hasText: 'bob wants to message you' }).waitFor();
  mkdirSync(SHOTS, { recursive: true });
  await alice.screenshot({ path: `${SHOTS}/web-requests.png` });
  assert.deepEqual((await bob.presence(['alice'])).map((p) => [p.online, p.last_seen]), [[false, null]]);
  assert.equal((await bob.allConversations())[0].awaiting, true);

  // Accept: in the inbox, out of Requests; bob's request is accepted and alice is online to him.
  await alice.click('#request-accept');
  await alice.locator('#inbox li[data-conversation="dm:alice:bob"]').waitFor();
  await alice.locator('#request-bar').waitFor({ state: 'hidden' });
  await alice.locator('#requests-count', { hasText: '1' }).waitFor();
  assert.equal((await bob.allConversations())[0].awaiting, undefined);
  assert.equal((await bob.presence(['alice']))[0].online, true);

  // Decline mallory's from the list: gone from both folders; mallory's next message is refused.
  await alice.click('#tab-requests');
  await mallorys.locator('button.decline').click();
  await mallorys.waitFor({ state: 'detached' });
  await alice.locator('#requests-count').waitFor({ state: 'hidden' });
  assert.equal(await alice.locator('#inbox li[data-conversation="dm:alice:mallory"]').count(), 0);
  await assert.rejects(mallory.send({ to: 'alice', body: 'hello??' }), { code: 'forbidden', message: "you can't message this user" });
  assert.deepEqual(errors, [], 'no errors in the page');
});
