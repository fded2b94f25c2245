// @ts-check
// The Messenger web app: sign in, an inbox ordered by activity with unread counts, previews,
// presence, mute and blocking, message requests (a folder of their own, accept / decline), 1:1
// and group chats with sent/delivered/read marks, replies, edits, deletions, reactions and
// typing indicators, history scroll-back, group creation. Built on the SDK (served by
// messenger-local at /sdk/); plain DOM, user text only ever set as text.
import { MessengerClient, WebStorage, applyEntry, isAmendment, newId } from '/sdk/index.js';

/** @typedef {import('/sdk/index.js').MessageView} MessageView */
/** @typedef {import('/sdk/index.js').ConversationView} ConversationView */
/** @typedef {import('/sdk/index.js').PresenceView} PresenceView */
/** @typedef {import('/sdk/index.js').OutboxItem} OutboxItem */
/** @typedef {import('/sdk/index.js').GroupEvent} GroupEvent */

/**
 * What the app knows of one conversation.
 * @typedef {object} Chat
 * @property {ConversationView} view
 * @property {Map<number, MessageView>} messages by seq
 * @property {number | null} oldest the smallest seq loaded (null: history not loaded yet)
 * @property {boolean} more older messages exist
 * @property {Map<string, { delivered: number, read: number }>} pointers others' pointers, from receipts
 * @property {boolean} listed in a folder: the inbox, or the requests when `view.request`. Not
 *   while the server has not listed it yet (it may be a request) or once declined
 */

const PRESENCE_REFRESH_MS = 60_000;
const PAGE = 30;
/** How long a `typing` shows (the SDK sends one every 3 s while the user types). */
const TYPING_SHOWN_MS = 6000;
/** The one-click reaction. */
const QUICK_REACTION = '👍';

/** @param {string} id @returns {any} */
const $ = (id) => document.getElementById(id);

/**
 * What the composer does with its text: send, answer a message, or replace one's body.
 * @typedef {{ kind: 'send' } | { kind: 'reply', seq: number } | { kind: 'edit', seq: number }} Compose
 */

/** @typedef {'inbox' | 'requests'} Folder */

/** @type {{ me: string, client: MessengerClient | null, chats: Map<string, Chat>, current: string | null, folder: Folder, presence: Map<string, PresenceView>, outbox: OutboxItem[], compose: Compose, typing: Map<string, Map<string, number>>, blocked: Set<string>, timer?: ReturnType<typeof setInterval> }} */
const app = { me: '', client: null, chats: new Map(), current: null, folder: 'inbox', presence: new Map(), outbox: [], compose: { kind: 'send' }, typing: new Map(), blocked: new Set() };

// ---- sign in

/** This tab's device id: one per tab, kept across reloads, so two windows are two devices. */
function tabDevice() {
  let device = sessionStorage.getItem('messenger:device');
  if (!device) {
    device = `web-${Math.random().toString(36).slice(2, 8)}`;
    sessionStorage.setItem('messenger:device', device);
  }
  return device;
}

function setUpSignIn() {
  /** @type {HTMLFormElement} */
  const form = $('signin-form');
  const saved = JSON.parse(localStorage.getItem('messenger:signin') ?? '{}');
  form.user.value = saved.user ?? '';
  form.url.value = saved.url ?? '';
  form.device.value = tabDevice();
  const showMode = () => {
    const deployed = form.mode.value === 'deployed';
    $('deployed-fields').hidden = !deployed;
    $('dev-fields').hidden = deployed;
  };
  if (saved.mode === 'deployed') form.mode.value = 'deployed';
  showMode();
  for (const radio of form.querySelectorAll('input[name=mode]')) radio.addEventListener('change', showMode);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    $('signin-error').textContent = '';
    const user = form.user.value.trim();
    const mode = form.mode.value;
    try {
      if (mode === 'dev') {
        const device = form.device.value.trim() || tabDevice();
        sessionStorage.setItem('messenger:device', device);
        const first = await devToken(user, device);
        localStorage.setItem('messenger:signin', JSON.stringify({ user, mode }));
        start(user, device, first.url, async () => (await devToken(user, device)).token);
      } else {
        const url = form.url.value.trim();
        const token = form.token.value.trim();
        if (!url || !token) throw new Error('a deployed stack needs its WebSocket URL and a token');
        localStorage.setItem('messenger:signin', JSON.stringify({ user, mode, url }));
        start(user, 'web', url, () => token);
      }
    } catch (error) {
      $('signin-error').textContent = String(/** @type {Error} */ (error).message ?? error);
    }
  });
}

/**
 * A development token from this gateway (minted only on loopback, with the development secret).
 * @param {string} user
 * @param {string} device
 * @returns {Promise<{ token: string, url: string }>}
 */
async function devToken(user, device) {
  const response = await fetch('/_local/token', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user, device }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.message ?? `sign-in failed (HTTP ${response.status})`);
  return body;
}

/**
 * @param {string} user
 * @param {string} device
 * @param {string} url
 * @param {() => string | Promise<string>} token
 */
function start(user, device, url, token) {
  app.me = user;
  const client = new MessengerClient({
    url,
    token,
    // Cursors and outbox per user and device: a reload syncs only what is new, and keeps
    // unsent messages.
    storage: new WebStorage(localStorage, `messenger:${user}:${device}:`),
    // A new device shows unread counts and loads history as chats open, not the whole log.
    initialSync: 'latest',
  });
  app.client = client;
  $('signin').hidden = true;
  $('app').hidden = false;
  $('me').textContent = `${user} · ${device}`;
  client.on('state', (state) => {
    $('status').textContent = state;
    $('status').dataset.state = state;
  });
  client.on('message', onMessage);
  client.on('receipt', onReceipt);
  client.on('typing', onTyping);
  client.on('muted', (m) => {
    Object.assign(chat(m.conversation).view, { muted: m.muted, muted_until: m.until });
    renderInbox();
    renderHeader();
  });
  client.on('blockState', (b) => {
    setBlocked(b.user, b.blocked);
  });
  // Accepted or declined on another device.
  client.on('requestState', (r) => requestAnswered(r.conversation, r.state));
  client.on('outbox', (items) => {
    app.outbox = items;
    renderChat();
  });
  client.on('sendFailed', ({ item, error }) => notice(`not sent (${error.code}): ${item.body.slice(0, 40)}`));
  client.on('replaced', () => notice('signed out here: you are connected on too many devices (sign in again to take over)'));
  client.on('synced', () => {
    // Who this is comes from the token (a deployed stack's token names its user).
    if (client.user && client.user !== app.me) {
      app.me = client.user;
      $('me').textContent = `${client.user} · ${client.device ?? device}`;
    }
    void refreshInbox();
    void refreshBlocked();
  });
  app.outbox = client.outbox();
  client.connect().catch(() => {});
  // The sender of a request is not told when it is accepted without a reply: while one of ours
  // waits, the folders are pulled with the presence (refreshInbox refreshes presence too).
  app.timer = setInterval(() => {
    const waiting = [...app.chats.values()].some((c) => c.view.awaiting);
    void (waiting ? refreshInbox() : refreshPresence());
  }, PRESENCE_REFRESH_MS);
}

async function signOut() {
  clearInterval(app.timer);
  await app.client?.close();
  app.client = null;
  app.chats.clear();
  app.presence.clear();
  app.outbox = [];
  app.current = null;
  app.folder = 'inbox';
  $('composer').hidden = true;
  $('mute').hidden = true;
  $('block').hidden = true;
  $('request-bar').hidden = true;
  app.blocked.clear();
  app.typing.clear();
  $('app').hidden = true;
  $('signin').hidden = false;
  $('inbox').replaceChildren();
  $('message-list').replaceChildren();
}

// ---- state

/** @param {string} id @param {Partial<ConversationView>} [view] @returns {Chat} */
function chat(id, view = {}) {
  let c = app.chats.get(id);
  if (!c) {
    const direct = id.startsWith('dm:');
    const other = direct ? id.slice(3).split(':').find((u) => u !== app.me) ?? app.me : undefined;
    c = {
      view: { conversation: id, kind: direct ? 'direct' : 'group', role: 'member', last_seq: 0, delivered: 0, read: 0, unread: 0, muted: false, ...(other ? { with: other } : {}) },
      messages: new Map(),
      oldest: null,
      more: false,
      pointers: new Map(),
      listed: true,
    };
    app.chats.set(id, c);
  }
  Object.assign(c.view, view);
  return c;
}

/** Both folders from the server: the inbox and the message requests waiting for this user. */
async function refreshInbox() {
  const client = app.client;
  if (!client) return;
  const [inbox, requests] = await Promise.all([client.allConversations(), client.allConversations({ folder: 'requests' })]);
  for (const view of [...inbox, ...requests]) {
    const c = chat(view.conversation);
    const { request: wasRequest, awaiting: wasAwaiting } = c.view;
    // Pointers only move forward; a reply may be older than what receipts already said.
    c.view = {
      ...view,
      last_seq: Math.max(view.last_seq, c.view.last_seq),
      read: Math.max(view.read, c.view.read),
      delivered: Math.max(view.delivered, c.view.delivered),
    };
    c.listed = true;
    if (app.current === view.conversation) {
      // The open request was accepted here by a reply: it is in the inbox now, and so is the view.
      if (wasRequest && !view.request) app.folder = 'inbox';
      // Ours was accepted: the read state it hid is visible now.
      if (wasAwaiting && !view.awaiting) void refreshPointers(view.conversation);
    }
  }
  renderInbox();
  await refreshPresence();
  if (app.current) markRead(app.current);
}

async function refreshPresence() {
  const users = [...app.chats.values()].flatMap((c) => (c.view.with ? [c.view.with] : []));
  if (!app.client || users.length === 0) return;
  for (let i = 0; i < users.length; i += 100) {
    for (const p of await app.client.presence(users.slice(i, i + 100))) app.presence.set(p.user, p);
  }
  renderInbox();
  renderHeader();
}

/** @param {MessageView} m */
function onMessage(m) {
  const known = app.chats.has(m.conversation);
  const c = chat(m.conversation);
  // A conversation new to this page is shown once the server says in which folder: it may be a
  // message request.
  if (!known) c.listed = false;
  const isNew = m.seq > c.view.last_seq;
  // Edits, deletions and reactions update the message they name; others are rows of their own.
  applyEntry(c.messages, m);
  c.view.last_seq = Math.max(c.view.last_seq, m.seq);
  if (m.event?.type === 'group_created' || m.event?.type === 'group_renamed') c.view.name = m.event.name;
  if (!m.event && isNew) {
    // What a person calls unread: others' chat messages. Sending reads, on the server too, so
    // one's own message needs no `read` ack.
    if (m.from === app.me) {
      c.view.unread = 0;
      c.view.read = Math.max(c.view.read, m.seq);
    } else {
      c.view.unread = (c.view.unread ?? 0) + 1;
    }
    app.typing.get(m.conversation)?.delete(m.from);
  }
  // What only the server knows changed: a conversation's first entry (a 1:1's first message is
  // a request to its recipient; a group may be one), a reply of ours accepted a request (or
  // wrote to someone we had declined), or the other's message answered ours.
  const answered = m.from === app.me ? c.view.request || !c.listed : c.view.awaiting;
  if (!known || m.seq === 1 || (answered && !m.event)) void refreshInbox();
  if (app.current === m.conversation) markRead(m.conversation);
  renderInbox();
  if (app.current === m.conversation) renderChat();
}

/** @param {import('/sdk/index.js').Typing} t */
function onTyping(t) {
  const typing = app.typing.get(t.conversation) ?? new Map();
  typing.set(t.user, Date.now() + TYPING_SHOWN_MS);
  app.typing.set(t.conversation, typing);
  renderHeader();
  setTimeout(renderHeader, TYPING_SHOWN_MS + 50);
}

/** @param {import('/sdk/index.js').Receipt} r */
function onReceipt(r) {
  const c = chat(r.conversation);
  if (r.by === app.me) {
    // Another of my devices.
    if (r.kind === 'read') c.view.read = Math.max(c.view.read, r.seq);
    c.view.delivered = Math.max(c.view.delivered, r.seq);
  } else {
    const p = c.pointers.get(r.by) ?? { delivered: 0, read: 0 };
    p.delivered = Math.max(p.delivered, r.seq);
    if (r.kind === 'read') p.read = Math.max(p.read, r.seq);
    c.pointers.set(r.by, p);
    // Receipts flow once our request is accepted.
    if (c.view.awaiting) void refreshInbox();
  }
  renderInbox();
  if (app.current === r.conversation) renderChat();
}

/** Marks the open conversation read while the page is visible. @param {string} id */
function markRead(id) {
  const c = app.chats.get(id);
  if (!c || !app.client || document.visibilityState !== 'visible') return;
  const seq = c.view.last_seq;
  if (seq <= c.view.read) return;
  c.view.read = seq;
  c.view.unread = 0;
  app.client.markRead(id, seq).catch(() => {});
  renderInbox();
}

/** @param {string} id */
async function open(id) {
  app.current = id;
  const c = chat(id);
  compose({ kind: 'send' });
  $('composer').hidden = false;
  renderInbox();
  renderChat();
  if (c.oldest === null) await loadOlder(id);
  markRead(id);
  await refreshPointers(id);
  if (c.view.with) {
    const [p] = (await app.client?.presence([c.view.with])) ?? [];
    if (p) app.presence.set(p.user, p);
    renderHeader();
    renderInbox();
  }
  $('composer').body.focus();
}

/**
 * The other members' pointers, pulled when a chat opens: in a group, receipts are pushed only to
 * a message's author, and none arrive for what happened while this page was closed.
 * @param {string} id
 */
async function refreshPointers(id) {
  const state = await app.client?.receipts(id).catch(() => undefined);
  if (!state) return;
  const c = chat(id);
  for (const m of state.members) {
    if (m.user === app.me) continue;
    const p = c.pointers.get(m.user) ?? { delivered: 0, read: 0 };
    // Pointers only move forward; a receipt may have overtaken this reply.
    p.delivered = Math.max(p.delivered, m.delivered);
    p.read = Math.max(p.read, m.read);
    c.pointers.set(m.user, p);
  }
  if (app.current === id) renderChat();
}

/** @param {string} id */
async function loadOlder(id) {
  const c = chat(id);
  if (!app.client || c.view.last_seq === 0) {
    c.oldest = c.oldest ?? 0;
    return renderChat();
  }
  const page = await app.client.history(id, { limit: PAGE, ...(c.oldest ? { before: c.oldest } : {}) });
  for (const m of page.messages) applyEntry(c.messages, m);
  const seqs = page.messages.map((m) => m.seq);
  c.oldest = seqs.length ? Math.min(...seqs, c.oldest ?? Infinity) : (c.oldest ?? 0);
  c.more = page.more;
  const list = $('messages');
  const fromBottom = list.scrollHeight - list.scrollTop;
  renderChat();
  if (c.oldest !== null && seqs.length) list.scrollTop = list.scrollHeight - fromBottom;
}

// ---- rendering

/** @param {string} tag @param {string} [className] @param {string} [text] */
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** @param {Chat} c */
function title(c) {
  return c.view.kind === 'direct' ? c.view.with ?? c.view.conversation : c.view.name ?? 'Group';
}

/** @param {string} user */
function presenceText(user) {
  const p = app.presence.get(user);
  if (!p) return '';
  if (p.online) return 'online';
  return p.last_seen ? `last seen ${ago(p.last_seen)}` : 'never seen';
}

/** @param {string} iso */
function ago(iso) {
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(iso).toLocaleDateString();
}

function renderInbox() {
  const items = [...app.chats.values()]
    .filter((c) => c.listed)
    .sort((a, b) => latest(b) - latest(a) || title(a).localeCompare(title(b)));
  const inbox = items.filter((c) => !c.view.request);
  const requests = items.filter((c) => c.view.request);
  // The badge counts the inbox, as the server's `unread_total` does: requests are pulled.
  const total = inbox.reduce((sum, c) => sum + (c.view.unread ?? 0), 0);
  document.title = total > 0 ? `(${total}) Messenger` : 'Messenger';
  $('requests-count').textContent = String(requests.length);
  $('requests-count').hidden = requests.length === 0;
  for (const folder of /** @type {Folder[]} */ (['inbox', 'requests'])) {
    $(folder).hidden = app.folder !== folder;
    $(`tab-${folder}`).setAttribute('aria-selected', String(app.folder === folder));
  }
  $('inbox').replaceChildren(...inbox.map(line));
  $('requests').replaceChildren(...requests.map(line));
}

/** One conversation in a folder; a request has its Accept and Decline (a group: Leave) buttons. @param {Chat} c */
function line(c) {
  const li = el('li', `${c.view.conversation === app.current ? 'active' : ''}${c.view.awaiting ? ' awaiting' : ''}`.trim());
  li.dataset.conversation = c.view.conversation;
  li.tabIndex = 0;
  const dot = el('span', 'dot');
  if (c.view.with && app.presence.get(c.view.with)?.online) dot.classList.add('online');
  if (c.view.kind === 'group') dot.classList.add('group');
  const name = el('span', 'name', `${title(c)}${c.view.muted ? ' 🔕' : ''}`);
  const unread = c.view.unread ?? 0;
  const badge = el('span', 'unread', unread > 0 ? String(unread) : '');
  badge.hidden = unread <= 0;
  const preview = el('span', 'preview', previewText(c));
  li.append(dot, name, badge, preview);
  if (c.view.request) li.append(requestButtons(c));
  li.addEventListener('click', () => void open(c.view.conversation));
  li.addEventListener('keydown', (e) => e.key === 'Enter' && e.target === li && void open(c.view.conversation));
  return li;
}

/** @param {Chat} c */
function requestButtons(c) {
  const box = el('span', 'request-actions');
  const id = c.view.conversation;
  /** @param {string} name @param {string} label @param {'accept' | 'decline' | 'leave'} how */
  const button = (name, label, how) => {
    const b = /** @type {HTMLButtonElement} */ (el('button', name, label));
    b.type = 'button';
    if (name !== 'accept') b.classList.add('secondary');
    b.addEventListener('click', (event) => {
      event.stopPropagation();
      void answerRequest(id, how);
    });
    box.append(b);
  };
  button('accept', 'Accept', 'accept');
  // A group request is declined by leaving it (`decline` is for 1:1 requests).
  if (c.view.kind === 'group') button('leave', 'Leave', 'leave');
  else button('decline', 'Decline', 'decline');
  return box;
}

/**
 * Answers a message request: accepting opens it in the inbox; declining (leaving a group) takes
 * it out of both folders.
 * @param {string} id @param {'accept' | 'decline' | 'leave'} how
 */
async function answerRequest(id, how) {
  const client = app.client;
  if (!client) return;
  try {
    if (how === 'accept') {
      const r = await client.accept(id);
      requestAnswered(r.conversation, r.state);
      app.folder = 'inbox';
      await open(id);
    } else if (how === 'decline') {
      const r = await client.decline(id);
      requestAnswered(r.conversation, r.state);
    } else {
      await client.leaveGroup(id);
      requestAnswered(id, 'declined');
    }
  } catch (error) {
    notice(`could not answer the request (${/** @type {any} */ (error).code ?? 'error'}): ${/** @type {Error} */ (error).message}`);
  }
}

/** A request was accepted or declined, here or on another device. @param {string} id @param {'accepted' | 'declined'} state */
function requestAnswered(id, state) {
  const known = app.chats.has(id);
  const c = chat(id);
  delete c.view.request;
  c.listed = state === 'accepted';
  if (state === 'declined' && app.current === id) closeChat();
  if (!known) void refreshInbox();
  renderInbox();
  renderHeader();
}

/** Shows no conversation. */
function closeChat() {
  app.current = null;
  compose({ kind: 'send' });
  for (const id of ['composer', 'mute', 'block', 'request-bar']) $(id).hidden = true;
  $('chat-title').textContent = 'No conversation';
  $('chat-subtitle').textContent = '';
  $('message-list').replaceChildren();
  $('older').hidden = true;
}

/** @param {Folder} folder */
function showFolder(folder) {
  app.folder = folder;
  renderInbox();
}

/** The latest chat message or membership change held, or none. @param {Chat} c */
function lastShown(c) {
  let last;
  for (const m of c.messages.values()) if (!isAmendment(m) && (!last || m.seq > last.seq)) last = m;
  return last;
}

/** When the conversation was last active (edits and reactions do not count). @param {Chat} c */
function latest(c) {
  const held = lastShown(c);
  const server = c.view.last ? Date.parse(c.view.last.sent_at) : 0;
  return Math.max(held ? Date.parse(held.sent_at) : 0, server);
}

/** The inbox line under a conversation's name. @param {Chat} c */
function previewText(c) {
  const held = lastShown(c);
  const last = c.view.last;
  if (held && (!last || held.seq >= last.seq)) return `${held.from === app.me ? 'You: ' : ''}${describe(held)}`;
  if (last) {
    const who = last.from === app.me ? 'You' : last.from;
    if (last.event) return `${who}: ${last.event.replace('_', ' ')}`;
    return `${last.from === app.me ? 'You: ' : ''}${last.deleted ? 'Message deleted' : last.text ?? ''}`;
  }
  return presenceText(c.view.with ?? '');
}

function renderHeader() {
  const c = app.current ? app.chats.get(app.current) : undefined;
  if (!c) return;
  $('chat-title').textContent = title(c);
  const now = Date.now();
  const typing = [...(app.typing.get(c.view.conversation) ?? new Map()).entries()]
    .filter(([, until]) => until > now)
    .map(([user]) => user);
  $('chat-subtitle').textContent = typing.length
    ? `${typing.join(', ')} ${typing.length > 1 ? 'are' : 'is'} typing…`
    : c.view.with ? presenceText(c.view.with) : members(c);
  $('mute').textContent = c.view.muted ? 'Unmute' : 'Mute';
  $('mute').hidden = false;
  // Blocking is per user: offered in a 1:1 chat.
  const other = c.view.with;
  $('block').hidden = !other;
  $('block').textContent = other && app.blocked.has(other) ? 'Unblock' : 'Block';
  renderRequestBar(c);
}

/**
 * Over a message request: who it is from, what they cannot see, Accept and Decline. Over one's
 * own request: that it is not accepted yet.
 * @param {Chat} c
 */
function renderRequestBar(c) {
  const bar = $('request-bar');
  const group = c.view.kind === 'group';
  if (c.view.request) {
    $('request-text').textContent = group
      ? `You were added to “${title(c)}” by someone who is not one of your contacts. Until you accept, the members can't see whether you've read their messages, and you get no notifications for it. Sending a message accepts.`
      : `${title(c)} wants to message you. Until you accept, they can't see whether you've read their messages, nor when you're online (unless you share a group), and you get no notifications for it. Replying accepts.`;
    $('request-decline').textContent = group ? 'Leave' : 'Decline';
    $('request-accept').hidden = false;
    $('request-decline').hidden = false;
    bar.dataset.state = 'request';
    bar.hidden = false;
  } else if (c.view.awaiting) {
    $('request-text').textContent = `${title(c)} hasn't accepted your message request yet: you won't see when they read your messages or are online until they do.`;
    $('request-accept').hidden = true;
    $('request-decline').hidden = true;
    bar.dataset.state = 'awaiting';
    bar.hidden = false;
  } else {
    bar.hidden = true;
    delete bar.dataset.state;
  }
}

/** Whom this user blocked, every page of it. */
async function refreshBlocked() {
  if (!app.client) return;
  try {
    const all = new Set();
    /** @type {string | undefined} */
    let cursor;
    do {
      const page = await app.client.blocked(cursor);
      for (const b of page.users) all.add(b.user);
      cursor = page.more ? page.cursor : undefined;
    } while (cursor);
    app.blocked = all;
    renderHeader();
  } catch (error) {
    notice(`could not load whom you blocked: ${/** @type {Error} */ (error).message}`);
  }
}

/** @param {string} user @param {boolean} blocked */
function setBlocked(user, blocked) {
  if (blocked) app.blocked.add(user);
  else app.blocked.delete(user);
  renderHeader();
}

/** A group's members, replayed from the membership events loaded (the log holds them all). @param {Chat} c */
function members(c) {
  /** @type {Set<string> | null} */
  let present = null;
  for (const m of [...c.messages.values()].sort((a, b) => a.seq - b.seq)) {
    const e = m.event;
    if (e?.type === 'group_created') present = new Set(e.members);
    else if (e?.type === 'members_added') e.users.forEach((u) => present?.add(u));
    else if (e?.type === 'members_removed') e.users.forEach((u) => present?.delete(u));
    else if (e?.type === 'member_left') present?.delete(m.from);
  }
  return present ? [...present].map((u) => (u === app.me ? 'you' : u)).join(', ') : 'group';
}

/** A message's text; system messages say what happened. @param {MessageView} m */
function describe(m) {
  const e = m.event;
  if (m.deleted) return 'Message deleted';
  if (!e) return m.body ?? '';
  const who = m.from === app.me ? 'You' : m.from;
  switch (e.type) {
    case 'group_created':
      return `${who} created the group “${e.name}” with ${e.members.filter((u) => u !== m.from).join(', ') || 'nobody yet'}`;
    case 'members_added':
      return `${who} added ${e.users.join(', ')}`;
    case 'members_removed':
      return `${who} removed ${e.users.join(', ')}`;
    case 'member_left':
      return `${who} left${e.promoted?.length ? `; ${e.promoted.join(', ')} now admin` : ''}`;
    case 'group_renamed':
      return `${who} renamed the group “${e.name}”`;
    default:
      return '';
  }
}

/** Sent / delivered / read, from the other members' pointers. @param {Chat} c @param {number} seq */
function mark(c, seq) {
  const others = [...c.pointers.entries()];
  const readBy = others.filter(([, p]) => p.read >= seq).map(([u]) => u);
  const deliveredTo = others.filter(([, p]) => p.delivered >= seq).map(([u]) => u);
  if (readBy.length) return { state: 'read', text: '✓✓ Seen', title: `Read by ${readBy.join(', ')}` };
  if (deliveredTo.length) return { state: 'delivered', text: '✓✓', title: `Delivered to ${deliveredTo.join(', ')}` };
  return { state: 'sent', text: '✓', title: 'Sent' };
}

function renderChat() {
  const c = app.current ? app.chats.get(app.current) : undefined;
  if (!c) return;
  renderHeader();
  const list = $('messages');
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  $('older').hidden = !c.more;
  const shown = [...c.messages.values()].filter((m) => !isAmendment(m)).sort((a, b) => a.seq - b.seq);
  const rows = shown.map((m) => {
    if (m.event) {
      const li = el('li', 'system', describe(m));
      li.dataset.seq = String(m.seq);
      return li;
    }
    const mine = m.from === app.me;
    const li = el('li', `message ${mine ? 'mine' : 'theirs'}${m.deleted ? ' deleted' : ''}`);
    li.dataset.seq = String(m.seq);
    if (!mine && c.view.kind === 'group') li.append(el('span', 'from', m.from));
    if (m.reply_to !== undefined) li.append(quote(c, m));
    if (m.attachments?.length) li.append(...m.attachments.map(attachment));
    if (m.body || !m.attachments?.length) li.append(el('span', 'body', describe(m)));
    if (m.reactions?.length) li.append(reactions(c, m));
    const meta = el('span', 'meta', new Date(m.sent_at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }));
    meta.title = m.sent_at;
    if (m.edited_at && !m.deleted) meta.prepend(el('span', 'edited', 'edited · '));
    if (!m.deleted) li.append(actions(c, m));
    if (mine) {
      const s = mark(c, m.seq);
      const check = el('span', `mark ${s.state}`, s.text);
      check.title = s.title;
      check.dataset.state = s.state;
      meta.append(' ', check);
    }
    li.append(meta);
    return li;
  });
  const other = c.view.with;
  const pending = app.outbox
    .filter((item) => item.conversation === c.view.conversation || (other !== undefined && item.to === other))
    .map((item) => {
      const li = el('li', 'message mine pending');
      li.append(el('span', 'body', item.body), el('span', 'meta', 'sending…'));
      return li;
    });
  $('message-list').replaceChildren(...rows, ...pending);
  if (atBottom || pending.length) list.scrollTop = list.scrollHeight;
}

/**
 * A file of a message: an image inline, anything else a link naming it. The URL is presigned
 * (an hour); a later render uses the URL of the latest frame.
 * @param {import('/sdk/index.js').Attachment} a
 */
function attachment(a) {
  const kb = `${Math.max(1, Math.round(a.size / 1024))} KB`;
  if (!a.url) return el('span', 'file', `📎 ${a.name} (${kb})`);
  if (a.content_type.startsWith('image/')) {
    const img = /** @type {HTMLImageElement} */ (el('img', 'photo'));
    img.src = a.url;
    img.alt = a.name;
    if (a.width && a.height) Object.assign(img, { width: Math.min(a.width, 240), height: Math.round(Math.min(a.width, 240) * a.height / a.width) });
    return img;
  }
  const link = /** @type {HTMLAnchorElement} */ (el('a', 'file', `📎 ${a.name} (${kb})`));
  link.href = a.url;
  link.rel = 'noopener';
  return link;
}

/** The quoted message of a reply. @param {Chat} c @param {MessageView} m */
function quote(c, m) {
  const q = m.quote ?? (m.reply_to !== undefined ? quoteOf(c.messages.get(m.reply_to)) : undefined);
  const text = q ? `${q.from === app.me ? 'You' : q.from}: ${q.deleted ? 'Message deleted' : q.text ?? ''}` : 'an earlier message';
  return el('span', 'quote', text);
}

/** @param {MessageView | undefined} m @returns {import('/sdk/index.js').Quote | undefined} */
function quoteOf(m) {
  if (!m) return undefined;
  return m.deleted ? { from: m.from, deleted: true } : { from: m.from, text: m.body ?? '' };
}

/** A message's reactions: click one to add or take back yours. @param {Chat} c @param {MessageView} m */
function reactions(c, m) {
  const row = el('span', 'reactions');
  for (const r of m.reactions ?? []) {
    const mine = r.users.includes(app.me);
    const b = /** @type {HTMLButtonElement} */ (el('button', `reaction${mine ? ' mine' : ''}`, `${r.emoji} ${r.users.length}`));
    b.type = 'button';
    b.title = r.users.join(', ');
    b.addEventListener('click', () => void react(c, m.seq, r.emoji, mine));
    row.append(b);
  }
  return row;
}

/** Reply, react, for one's own (or as a group admin) edit and delete, for others' report. @param {Chat} c @param {MessageView} m */
function actions(c, m) {
  const box = el('span', 'actions');
  /** @param {string} name @param {string} label @param {() => void} run */
  const button = (name, label, run) => {
    const b = /** @type {HTMLButtonElement} */ (el('button', `action ${name}`, label));
    b.type = 'button';
    b.title = name;
    b.addEventListener('click', run);
    box.append(b);
  };
  button('reply', '↩', () => compose({ kind: 'reply', seq: m.seq }));
  const reacted = m.reactions?.some((r) => r.emoji === QUICK_REACTION && r.users.includes(app.me)) ?? false;
  button('react', QUICK_REACTION, () => void react(c, m.seq, QUICK_REACTION, reacted));
  if (m.from === app.me) button('edit', '✎', () => compose({ kind: 'edit', seq: m.seq }));
  if (m.from === app.me || (c.view.kind === 'group' && c.view.role === 'admin')) {
    button('delete', '🗑', () => void amend(() => app.client?.delete(c.view.conversation, m.seq)));
  }
  if (m.from !== app.me && !m.deleted) button('report', '⚑', () => void report(c, m));
  return box;
}

/** The reasons a report may give (docs/protocol.md). */
const REPORT_REASONS = ['spam', 'harassment', 'hate', 'nudity', 'violence', 'self_harm', 'other'];

/** Asks why, then reports the message to the operators. @param {Chat} c @param {MessageView} m */
async function report(c, m) {
  const reason = window.prompt(`Report this message from ${m.from}? Reason: ${REPORT_REASONS.join(', ')}`, 'spam');
  if (reason === null) return;
  if (!REPORT_REASONS.includes(reason.trim())) {
    notice(`not reported: the reason must be one of ${REPORT_REASONS.join(', ')}`);
    return;
  }
  try {
    const r = await app.client?.report(c.view.conversation, m.seq, /** @type {any} */ (reason.trim()));
    if (r) notice(r.duplicate ? 'You reported this message already today.' : 'Reported. Thank you: the moderators will look at it.');
  } catch (error) {
    notice(`not reported (${/** @type {any} */ (error).code ?? 'error'}): ${/** @type {Error} */ (error).message}`);
  }
}

/** @param {Chat} c @param {number} seq @param {string} emoji @param {boolean} remove */
function react(c, seq, emoji, remove) {
  return amend(() => app.client?.react(c.view.conversation, seq, emoji, { remove }));
}

/** Runs an edit, delete or reaction; the SDK files the reply's entry like a push. @param {() => Promise<unknown> | undefined} run */
async function amend(run) {
  try {
    await run();
  } catch (error) {
    notice(`not done (${/** @type {any} */ (error).code ?? 'error'}): ${/** @type {Error} */ (error).message}`);
  }
}

/** Sets what the composer does, and says it above it. @param {Compose} next */
function compose(next) {
  app.compose = next;
  const c = app.current ? app.chats.get(app.current) : undefined;
  const bar = $('compose-mode');
  const input = $('composer').body;
  if (next.kind === 'send' || !c) {
    bar.hidden = true;
    return;
  }
  const m = c.messages.get(next.seq);
  $('compose-text').textContent = next.kind === 'reply'
    ? `Replying to ${m?.from === app.me ? 'yourself' : m?.from ?? 'a message'}: ${m ? describe(m) : ''}`
    : 'Editing your message';
  if (next.kind === 'edit') input.value = m?.body ?? '';
  bar.hidden = false;
  input.focus();
}

/** @param {string} text */
function notice(text) {
  const li = el('li', 'notice', text);
  $('message-list').append(li);
}

// ---- actions

function setUpApp() {
  $('signout').addEventListener('click', () => void signOut());
  $('older').addEventListener('click', () => app.current && void loadOlder(app.current));
  $('messages').addEventListener('scroll', () => {
    const c = app.current ? app.chats.get(app.current) : undefined;
    if (c?.more && $('messages').scrollTop === 0) void loadOlder(c.view.conversation);
  });
  document.addEventListener('visibilitychange', () => app.current && markRead(app.current));

  $('new-chat').addEventListener('submit', (/** @type {SubmitEvent} */ event) => {
    event.preventDefault();
    const form = /** @type {HTMLFormElement} */ (event.target);
    const other = form.user.value.trim();
    const [a, b] = [app.me, other].sort();
    form.reset();
    const id = `dm:${a}:${b}`;
    chat(id);
    void open(id);
  });

  $('new-group-form').addEventListener('submit', async (/** @type {SubmitEvent} */ event) => {
    event.preventDefault();
    const form = /** @type {HTMLFormElement} */ (event.target);
    const members = String(form.members.value).split(/[\s,]+/).filter(Boolean);
    try {
      const group = await app.client?.createGroup({ name: form.group.value.trim(), members });
      if (!group) return;
      form.reset();
      $('new-group').open = false;
      const c = chat(group.conversation, { kind: 'group', name: group.name, role: 'admin', last_seq: Math.max(group.seq, chat(group.conversation).view.last_seq) });
      // Its creator's: in the inbox (its first entry may have arrived before this reply).
      c.listed = true;
      await open(group.conversation);
    } catch (error) {
      alert(`Could not create the group: ${/** @type {Error} */ (error).message}`);
    }
  });

  $('composer').addEventListener('submit', (/** @type {SubmitEvent} */ event) => {
    event.preventDefault();
    const form = /** @type {HTMLFormElement} */ (event.target);
    const body = form.body.value;
    const c = app.current ? app.chats.get(app.current) : undefined;
    const client = app.client;
    if (!c || !client || !body.trim()) return;
    form.body.value = '';
    const mode = app.compose;
    compose({ kind: 'send' });
    if (mode.kind === 'edit') {
      void amend(() => client.edit(c.view.conversation, mode.seq, body));
      return;
    }
    const target = c.view.with ? { to: c.view.with } : { conversation: c.view.conversation };
    const reply = mode.kind === 'reply' ? { replyTo: mode.seq } : {};
    // Sending reads (the server moves the read pointer): only others' newer messages need an ack.
    client
      .send({ ...target, body, ...reply })
      .then((sent) => markRead(sent.conversation))
      .catch(() => {});
  });
  $('attach').addEventListener('change', async (/** @type {Event} */ event) => {
    const input = /** @type {HTMLInputElement} */ (event.target);
    const file = input.files?.[0];
    input.value = '';
    const c = app.current ? app.chats.get(app.current) : undefined;
    const client = app.client;
    if (!file || !c || !client) return;
    const target = c.view.with ? { to: c.view.with } : { conversation: c.view.conversation };
    const clientMsgId = newId();
    try {
      const size = file.type.startsWith('image/') ? await imageSize(file) : {};
      const { attachment: id } = await client.upload({ ...target, file, name: file.name, clientMsgId, ...size });
      const body = $('composer').body.value;
      $('composer').body.value = '';
      const sent = await client.send({ ...target, body, clientMsgId, attachments: [id] });
      markRead(sent.conversation);
    } catch (error) {
      notice(`could not send ${file.name}: ${/** @type {Error} */ (error).message}`);
    }
  });
  $('composer').body.addEventListener('input', () => {
    // The SDK sends at most one `typing` per conversation every 3 s; a 1:1 conversation exists
    // (and has someone to tell) from its first message on.
    const c = app.current ? app.chats.get(app.current) : undefined;
    // Typing in a request is dropped by the server until it is accepted: not sent.
    if (c && c.view.last_seq > 0 && !c.view.request && app.client && $('composer').body.value) app.client.typing(c.view.conversation);
  });
  $('compose-cancel').addEventListener('click', () => {
    if (app.compose.kind === 'edit') $('composer').body.value = '';
    compose({ kind: 'send' });
  });
  $('mute').addEventListener('click', async () => {
    const c = app.current ? app.chats.get(app.current) : undefined;
    if (!c || !app.client) return;
    try {
      const r = c.view.muted ? await app.client.unmute(c.view.conversation) : await app.client.mute(c.view.conversation);
      Object.assign(c.view, { muted: r.muted, muted_until: r.until });
      renderHeader();
      renderInbox();
    } catch (error) {
      notice(`could not change the mute: ${/** @type {Error} */ (error).message}`);
    }
  });
  $('tab-inbox').addEventListener('click', () => showFolder('inbox'));
  $('tab-requests').addEventListener('click', () => showFolder('requests'));
  for (const [button, how] of /** @type {const} */ ([['request-accept', 'accept'], ['request-decline', 'decline']])) {
    $(button).addEventListener('click', () => {
      const c = app.current ? app.chats.get(app.current) : undefined;
      if (c?.view.request) void answerRequest(c.view.conversation, how === 'decline' && c.view.kind === 'group' ? 'leave' : how);
    });
  }
  $('block').addEventListener('click', async () => {
    const c = app.current ? app.chats.get(app.current) : undefined;
    const other = c?.view.with;
    if (!other || !app.client) return;
    try {
      const r = app.blocked.has(other) ? await app.client.unblock(other) : await app.client.block(other);
      setBlocked(r.user, r.blocked);
    } catch (error) {
      notice(`could not change the block: ${/** @type {Error} */ (error).message}`);
    }
  });
}

/** An image's pixel size, for the others to lay it out before it loads. @param {Blob} file */
async function imageSize(file) {
  try {
    const bitmap = await createImageBitmap(file);
    const size = { width: bitmap.width, height: bitmap.height };
    bitmap.close();
    return size.width > 0 && size.height > 0 && size.width <= 20000 && size.height <= 20000 ? size : {};
  } catch {
    return {};
  }
}

setUpSignIn();
setUpApp();
