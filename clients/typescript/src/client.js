// @ts-check
/**
 * `MessengerClient`: one user's device on the Messenger WebSocket API, with the hard parts of
 * the protocol done once (docs/protocol.md):
 * - connects with a token provider, asked again before every connection;
 * - sends a `heartbeat` before API Gateway's 10-minute idle close (never answered, and no
 *   function runs for it); with `heartbeatProbe`, an answered one instead, dropping a
 *   connection whose heartbeat goes unanswered;
 * - reconnects with exponential backoff and full jitter (after the 2-hour close, a restart, a
 *   lost network), and after every (re)connect syncs from its cursors before going `online`;
 * - keeps sends in an outbox that survives reconnects and retries them with the same
 *   `client_msg_id`, in order within a conversation;
 * - matches replies to requests by `id`, with timeouts;
 * - emits every message of the log once per (conversation, seq) and in seq order within its
 *   conversation, whether pushed, synced, or this device's own send once stored (edits,
 *   deletions and reactions are entries of the log too: `applyEntry` keeps an app's messages
 *   current);
 * - throttles `typing` to one per conversation every 3 seconds.
 * @module
 */

import { Cursors } from './cursors.js';
import { Emitter } from './emitter.js';
import { Outbox } from './outbox.js';
import { RETRYABLE_CODES } from './protocol.js';
import { MemoryStorage } from './storage.js';

/** @typedef {import('./protocol.js').ClientFrame} ClientFrame */
/** @typedef {import('./protocol.js').ServerFrame} ServerFrame */
/** @typedef {import('./protocol.js').CloseReason} CloseReason */
/** @typedef {import('./protocol.js').Replies} Replies */
/** @typedef {import('./protocol.js').MessageView} MessageView */
/** @typedef {import('./protocol.js').Receipt} Receipt */
/** @typedef {import('./protocol.js').Sent} Sent */
/** @typedef {import('./protocol.js').ErrorFrame} ErrorFrame */
/** @typedef {import('./protocol.js').ErrorCode} ErrorCode */
/** @typedef {import('./protocol.js').ReceiptKind} ReceiptKind */
/** @typedef {import('./protocol.js').ConversationView} ConversationView */
/** @typedef {import('./protocol.js').PresenceView} PresenceView */
/** @typedef {import('./protocol.js').Platform} Platform */
/** @typedef {import('./protocol.js').Typing} Typing */
/** @typedef {import('./protocol.js').Muted} Muted */
/** @typedef {import('./protocol.js').BlockState} BlockState */
/** @typedef {import('./protocol.js').Blocked} Blocked */
/** @typedef {import('./protocol.js').Reported} Reported */
/** @typedef {import('./protocol.js').ReportReason} ReportReason */
/** @typedef {import('./protocol.js').RequestState} RequestState */
/** @typedef {import('./protocol.js').Folder} Folder */
/** @typedef {import('./outbox.js').OutboxItem} OutboxItem */
/** @typedef {import('./storage.js').Storage} Storage */

/**
 * The part of the WebSocket API the client uses (browsers, Node ≥ 22, React Native; Node 20
 * with `--experimental-websocket`, or pass the `ws` package's class).
 * @typedef {object} WebSocketLike
 * @property {(data: string) => void} send
 * @property {(code?: number, reason?: string) => void} close
 * @property {(type: string, listener: (event: any) => void) => void} addEventListener
 * @property {(type: string, listener: (event: any) => void) => void} removeEventListener
 */
/** @typedef {new (url: string) => WebSocketLike} WebSocketConstructor */

/**
 * @typedef {object} ClientOptions
 * @property {string} url the WebSocket URL without the token, e.g. `ws://127.0.0.1:8080/local`
 * @property {string | (() => string | Promise<string>)} token a JWT, or a function giving one:
 *   called before every connection, so it can refresh an expiring token
 * @property {Storage} [storage] where cursors and the outbox are kept (default: in memory)
 * @property {WebSocketConstructor} [WebSocket] default: `globalThis.WebSocket`
 * @property {number} [heartbeatMs] a heartbeat after this long without a frame sent
 *   (default 4 minutes; API Gateway closes after 10 idle minutes); 0 turns it off
 * @property {boolean} [heartbeatProbe] make each heartbeat an answered `presence` of nobody and
 *   drop the connection when it goes unanswered (detects a silently dead socket, at the price
 *   of a function invocation per heartbeat); default false: the free `heartbeat` frame
 * @property {number} [requestTimeoutMs] how long a request waits for its reply (default 15 s)
 * @property {number} [reconnectMinMs] the first reconnect delay is random below this (500 ms)
 * @property {number} [reconnectMaxMs] the cap of the exponential backoff (default 30 s)
 * @property {number} [syncPageSize] messages per `sync` page (default and maximum 100)
 * @property {boolean} [ackDelivered] ack `delivered` for others' messages as they arrive
 *   (default true)
 * @property {'everything' | 'latest'} [initialSync] what a device without stored cursors gets
 *   on its first connection: `everything` (the default) syncs every conversation's whole log;
 *   `latest` starts at each conversation's latest message, in the inbox and the message
 *   requests (the app shows unread counts from `conversations()` and loads older messages with
 *   `history()`); declined requests, which no folder lists, are synced whole
 */

/** @typedef {'idle' | 'connecting' | 'syncing' | 'online' | 'offline' | 'closed'} ConnectionState */

/**
 * @typedef {object} ClientEvents
 * @property {MessageView} message a message of the log, once per (conversation, seq), in seq
 *   order within its conversation
 * @property {Receipt} receipt a member's delivered/read pointer moved
 * @property {{ item: OutboxItem, sent: Sent }} sent an outbox item is stored
 * @property {{ item: OutboxItem, error: MessengerError }} sendFailed the server refused it for good
 * @property {OutboxItem[]} outbox the outbox changed
 * @property {ConnectionState} state
 * @property {{ code: number, reason: string }} disconnect a connection ended
 * @property {{ messages: number }} synced a (re)connect's sync finished; the client is online
 * @property {Typing} typing another member is typing (show it for about 6 seconds)
 * @property {Muted} muted this user muted or unmuted a conversation on another device
 * @property {{ reason: CloseReason }} replaced the service closed the connection for good: the
 *   user connected more devices at once than they may, and this was the oldest. The client
 *   stops (state `closed`) instead of reconnecting, which would close another of the user's
 *   connections; a new client on the same storage takes over when the user asks
 * @property {BlockState} blockState this user blocked or unblocked someone on another device
 * @property {RequestState} requestState this user accepted or declined a message request on
 *   another device
 * @property {ServerFrame} frame every frame received, as is
 * @property {Error} error a problem the client handles itself (token provider failed, …)
 */

/**
 * Every action of the protocol and the method that speaks it (the tests check this against
 * docs/asyncapi.yaml).
 */
export const ACTIONS = Object.freeze({
  send: 'send',
  ack: 'ack',
  receipts: 'receipts',
  sync: 'sync',
  history: 'history',
  presence: 'presence',
  heartbeat: 'heartbeat',
  create_group: 'createGroup',
  add_members: 'addMembers',
  remove_members: 'removeMembers',
  rename_group: 'renameGroup',
  leave_group: 'leaveGroup',
  conversations: 'conversations',
  register_push: 'registerPush',
  unregister_push: 'unregisterPush',
  typing: 'typing',
  edit: 'edit',
  delete: 'delete',
  react: 'react',
  mute: 'mute',
  unmute: 'unmute',
  block: 'block',
  unblock: 'unblock',
  blocked: 'blocked',
  report: 'report',
  accept: 'accept',
  decline: 'decline',
  upload: 'upload',
  download: 'download',
});

/** The least time between two `typing` frames of one conversation (the server forwards at most one per 2 s). */
export const TYPING_INTERVAL_MS = 3000;

/** A request that failed: an `error` reply (its `code`), or `timeout`, `disconnected`, `closed`. */
export class MessengerError extends Error {
  /**
   * @param {ErrorCode | 'timeout' | 'disconnected' | 'closed' | 'upload_refused'} code
   * @param {string} message
   * @param {ErrorFrame} [frame] the server's `error` frame
   */
  constructor(code, message, frame) {
    super(message);
    this.name = 'MessengerError';
    this.code = code;
    this.frame = frame;
  }
}

/**
 * @typedef {object} Pending
 * @property {string} text the frame, with its id
 * @property {(frame: any) => void} resolve
 * @property {(error: MessengerError) => void} reject
 * @property {boolean} resend whether to send it again on the next connection if this one drops
 * @property {WebSocketLike | null} transmittedOn
 * @property {ReturnType<typeof setTimeout>} [timer]
 */

/** @extends {Emitter<ClientEvents>} */
export class MessengerClient extends Emitter {
  /** @type {Required<Omit<ClientOptions, 'token'>> & Pick<ClientOptions, 'token'>} */
  #opts;
  #cursors = new Cursors();
  /** Whether storage had no cursors (a new device), until the first sync. */
  #fresh = false;
  #outbox = new Outbox();
  /** @type {Promise<void>} */
  #loaded;
  /** @type {ConnectionState} */
  #state = 'idle';
  /** @type {WebSocketLike | null} the open socket */
  #socket = null;
  /** @type {((code: number, reason: string) => void) | null} ends the current connection */
  #drop = null;
  #running = false;
  #stopped = false;
  #nextId = 0;
  /** @type {Map<string, Pending>} */
  #pending = new Map();
  /** @type {Map<string, { result: Promise<Sent>, resolve: (sent: Sent) => void, reject: (e: MessengerError) => void }>} send() promises by client_msg_id */
  #waiters = new Map();
  /** @type {Promise<number> | null} */
  #syncing = null;
  #syncAgain = false;
  /** @type {Set<string>} conversations holding messages behind a gap */
  #gaps = new Set();
  /** @type {Set<string>} */
  #toAck = new Set();
  /** @type {Map<string, number>} delivered pointer acked per conversation */
  #acked = new Map();
  /** @type {Map<string, number>} when `typing` last went out, per conversation (epoch ms) */
  #typedAt = new Map();
  /** @type {Set<string>} storage keys to write */
  #dirty = new Set();
  /** @type {Promise<void> | null} */
  #saving = null;
  /** @type {Record<string, ReturnType<typeof setTimeout> | undefined>} */
  #timers = {};
  /** @type {(() => void) | null} cuts a backoff wait short */
  #wake = null;
  /** The next reconnect waits for nothing (`reconnect()`). */
  #noWait = false;
  /** @type {CloseReason | undefined} why the service said it closes this connection */
  #closedFor = undefined;
  /** @type {string | undefined} the user, from the token's `sub` */
  user;
  /** @type {string | undefined} the device, from the token's `device` claim */
  device;

  /** @param {ClientOptions} options */
  constructor(options) {
    super();
    this.#opts = {
      storage: new MemoryStorage(),
      WebSocket: /** @type {any} */ (globalThis).WebSocket,
      heartbeatMs: 4 * 60_000,
      heartbeatProbe: false,
      requestTimeoutMs: 15_000,
      reconnectMinMs: 500,
      reconnectMaxMs: 30_000,
      syncPageSize: 100,
      ackDelivered: true,
      initialSync: 'everything',
      ...options,
    };
    if (typeof this.#opts.WebSocket !== 'function') {
      throw new TypeError('no WebSocket: pass options.WebSocket (Node 20: --experimental-websocket)');
    }
    this.#loaded = this.#load();
  }

  /** @returns {ConnectionState} */
  get state() {
    return this.#state;
  }

  /** The messages not yet stored by the server, oldest first. */
  outbox() {
    return this.#outbox.items();
  }

  /** What this device has of a conversation: every seq up to this one. @param {string} conversation */
  cursor(conversation) {
    return this.#cursors.cursor(conversation);
  }

  /**
   * Starts connecting (and reconnecting, until {@link close}); resolves once online, i.e.
   * connected and synced. It does not reject when a connection fails (it keeps trying; see the
   * `error` and `state` events), only when the client is closed.
   * @returns {Promise<void>}
   */
  async connect() {
    if (this.#stopped) throw new MessengerError('closed', 'the client is closed');
    if (!this.#running) {
      this.#running = true;
      void this.#run();
    }
    if (this.#state === 'online') return;
    const state = await this.once('state', (s) => s === 'online' || s === 'closed');
    if (state === 'closed') throw new MessengerError('closed', 'the client was closed');
  }

  /** Drops the current connection and connects again at once (e.g. when the network changed). */
  reconnect() {
    this.#noWait = true;
    this.#drop?.(4001, 'reconnect requested');
    this.#wake?.();
  }

  /**
   * Stops for good: closes the connection and rejects what is waiting. The outbox stays in
   * storage: a new client on the same storage sends it.
   */
  async close() {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const timer of Object.values(this.#timers)) clearTimeout(timer);
    this.#wake?.();
    this.#drop?.(1000, 'client closed');
    const closed = new MessengerError('closed', 'the client was closed');
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(closed);
    }
    this.#pending.clear();
    for (const w of this.#waiters.values()) w.reject(closed);
    this.#waiters.clear();
    if (!this.#running) this.#setState('closed');
    await this.#saving;
  }

  // ---- the actions: one method each (ACTIONS)

  /**
   * Sends a message. It is queued in the outbox at once and sent when connected, again after
   * every reconnect (same `client_msg_id`) until the server has stored it. Resolves with the
   * `sent` reply; rejects if the server refuses it for good (`forbidden`, `too_large`,
   * `bad_request`) or the client is closed first. With `replyTo`, it answers that message of the
   * conversation. With `attachments` (ids from {@link upload}, made with the same `clientMsgId`),
   * it carries those files, and `body` may be empty.
   * @param {({ to: string } | { conversation: string }) & { body?: string, clientMsgId?: string, replyTo?: number, attachments?: string[] }} message
   * @returns {Promise<Sent>}
   */
  async send(message) {
    await this.#loaded;
    if (this.#stopped) throw new MessengerError('closed', 'the client is closed');
    const clientMsgId = message.clientMsgId ?? newId();
    const waiting = this.#waiters.get(clientMsgId);
    if (waiting) return waiting.result;
    /** @type {{ resolve: (sent: Sent) => void, reject: (e: MessengerError) => void }} */
    let settle = { resolve: () => {}, reject: () => {} };
    /** @type {Promise<Sent>} */
    const result = new Promise((resolve, reject) => {
      settle = { resolve, reject };
    });
    this.#waiters.set(clientMsgId, { result, ...settle });
    if (!this.#outbox.has(clientMsgId)) {
      const to = 'to' in message ? message.to : undefined;
      const conversation = 'conversation' in message ? message.conversation : undefined;
      this.#outbox.add({
        clientMsgId,
        ...(to !== undefined ? { to } : { conversation }),
        body: message.body ?? '',
        ...(message.replyTo !== undefined ? { replyTo: message.replyTo } : {}),
        ...(message.attachments?.length ? { attachments: [...message.attachments] } : {}),
        queuedAt: new Date().toISOString(),
        key: conversation ?? this.#directId(/** @type {string} */ (to)),
      });
      this.#outboxChanged();
    }
    this.#pump();
    return result;
  }

  /**
   * Moves this user's pointer (only ever forward). The SDK acks `delivered` by itself
   * (`ackDelivered`); call {@link markRead} when the user has seen messages.
   * @param {string} conversation
   * @param {number} seq
   * @param {ReceiptKind} kind
   */
  ack(conversation, seq, kind) {
    return this.#request({ action: 'ack', conversation, seq, kind });
  }

  /** The user has seen everything up to `seq`. @param {string} conversation @param {number} seq */
  markRead(conversation, seq) {
    return this.ack(conversation, seq, 'read');
  }

  /**
   * Every member's delivered/read pointers ("message info"): in a group, receipts are pushed to
   * a message's author only, so this is how the others see who has read what.
   * @param {string} conversation
   */
  receipts(conversation) {
    return this.#request({ action: 'receipts', conversation });
  }

  /**
   * Keeps the socket open (the SDK sends it by itself, see `heartbeatMs`). Never answered.
   * @returns {boolean} whether it went out (false while disconnected)
   */
  heartbeat() {
    return this.#fire({ action: 'heartbeat' });
  }

  /**
   * Fetches everything after the cursors, page by page, emitting each new message. Runs by
   * itself after every (re)connect and when a push reveals a gap; resolves with the number of
   * new messages.
   * @returns {Promise<number>}
   */
  sync() {
    if (this.#syncing) {
      this.#syncAgain = true;
      return this.#syncing;
    }
    const run = async () => {
      let total = 0;
      try {
        do {
          this.#syncAgain = false;
          total += await this.#syncPages();
        } while (this.#syncAgain);
      } finally {
        this.#syncing = null;
      }
      return total;
    };
    return (this.#syncing = run());
  }

  /**
   * Older messages of a conversation, newest first (not emitted as `message` events).
   * @param {string} conversation
   * @param {{ before?: number, limit?: number }} [page]
   */
  history(conversation, page = {}) {
    return this.#request({ action: 'history', conversation, ...page });
  }

  /**
   * Online status and last-seen of users (at most 100).
   * @param {string[]} users
   * @returns {Promise<PresenceView[]>}
   */
  async presence(users) {
    return (await this.#request({ action: 'presence', users })).users;
  }

  /**
   * Creates a group with this user as admin. Retried requests land on the same group.
   * @param {{ name: string, members?: string[], clientMsgId?: string }} group
   */
  createGroup({ name, members = [], clientMsgId = newId() }) {
    return this.#request({ action: 'create_group', name, members, client_msg_id: clientMsgId });
  }

  /** @param {string} conversation @param {string[]} users @param {{ clientMsgId?: string }} [options] */
  addMembers(conversation, users, { clientMsgId = newId() } = {}) {
    return this.#request({ action: 'add_members', conversation, users, client_msg_id: clientMsgId });
  }

  /** @param {string} conversation @param {string[]} users @param {{ clientMsgId?: string }} [options] */
  removeMembers(conversation, users, { clientMsgId = newId() } = {}) {
    return this.#request({ action: 'remove_members', conversation, users, client_msg_id: clientMsgId });
  }

  /** @param {string} conversation @param {string} name @param {{ clientMsgId?: string }} [options] */
  renameGroup(conversation, name, { clientMsgId = newId() } = {}) {
    return this.#request({ action: 'rename_group', conversation, name, client_msg_id: clientMsgId });
  }

  /** @param {string} conversation @param {{ clientMsgId?: string }} [options] */
  leaveGroup(conversation, { clientMsgId = newId() } = {}) {
    return this.#request({ action: 'leave_group', conversation, client_msg_id: clientMsgId });
  }

  /**
   * One page of a folder, latest activity first: the inbox (`folder` absent or `'inbox'`) or the
   * message requests waiting for this user (`'requests'`); the next page starts at the reply's
   * `cursor`. Every page says how many requests wait (`requests`).
   * @param {{ cursor?: string, after?: string, limit?: number, folder?: Folder }} [page]
   */
  conversations(page = {}) {
    return this.#request({ action: 'conversations', ...page });
  }

  /**
   * A whole folder (every page): the inbox by default, or `{ folder: 'requests' }`.
   * @param {{ folder?: Folder }} [options]
   * @returns {Promise<ConversationView[]>}
   */
  async allConversations({ folder } = {}) {
    /** @type {ConversationView[]} */
    const all = [];
    /** @type {string | undefined} */
    let cursor;
    const of = folder === undefined ? {} : { folder };
    for (;;) {
      const page = await this.conversations(cursor === undefined ? of : { ...of, cursor });
      all.push(...page.conversations);
      if (!page.more || page.cursor === undefined) return all;
      cursor = page.cursor;
    }
  }

  /**
   * Offline push to this device (the token's `device`).
   * @param {{ platform: Platform, token: string, preview?: boolean }} registration
   */
  registerPush(registration) {
    return this.#request({ action: 'register_push', ...registration });
  }

  unregisterPush() {
    return this.#request({ action: 'unregister_push' });
  }

  /**
   * Tells the other members this user is typing; call it as the user types. Not answered: it
   * is sent only while connected, at most once per conversation every {@link TYPING_INTERVAL_MS}
   * (the rest are dropped here), and a refusal arrives as an `error` event.
   * @param {string} conversation
   * @returns {boolean} whether a frame went out
   */
  typing(conversation) {
    const now = Date.now();
    const ws = this.#socket;
    if (!ws || this.#stopped || now - (this.#typedAt.get(conversation) ?? -Infinity) < TYPING_INTERVAL_MS) {
      return false;
    }
    this.#typedAt.set(conversation, now);
    ws.send(JSON.stringify({ action: 'typing', conversation }));
    this.#armHeartbeat();
    return true;
  }

  /**
   * A new body for one of this user's messages (within the server's edit window, 15 minutes by
   * default). Resolves with the message as it now is.
   * @param {string} conversation @param {number} seq @param {string} body
   */
  edit(conversation, seq, body) {
    return this.#amend({ action: 'edit', conversation, seq, body });
  }

  /**
   * Deletes a message for everyone (this user's own; in a group an admin may delete any).
   * @param {string} conversation @param {number} seq
   */
  delete(conversation, seq) {
    return this.#amend({ action: 'delete', conversation, seq });
  }

  /**
   * Adds this user's reaction (`remove: true` takes it back).
   * @param {string} conversation @param {number} seq @param {string} emoji
   * @param {{ remove?: boolean }} [options]
   */
  react(conversation, seq, emoji, { remove = false } = {}) {
    return this.#amend({ action: 'react', conversation, seq, emoji, ...(remove ? { remove } : {}) });
  }

  /**
   * An edit, delete or reaction: the reply's entry goes into the log like a push (this device's
   * connection gets no push of its own change).
   * @template {import('./protocol.js').EditRequest | import('./protocol.js').DeleteRequest | import('./protocol.js').ReactRequest} F
   * @param {F} frame
   */
  async #amend(frame) {
    const reply = await this.#request(frame);
    if (reply.entry) this.#deliver(reply.entry);
    return reply;
  }

  /**
   * No pushes for the conversation to this user's devices until `until` (omitted or null:
   * until {@link unmute}).
   * @param {string} conversation @param {Date | string | null} [until]
   */
  mute(conversation, until = null) {
    const end = until instanceof Date ? until.toISOString() : until;
    return this.#request({ action: 'mute', conversation, until: end });
  }

  /** Pushes for the conversation again. @param {string} conversation */
  unmute(conversation) {
    return this.#request({ action: 'unmute', conversation });
  }

  /**
   * Blocks `user`: their 1:1 messages to this user are refused (they are told only "you can't
   * message this user"), this user reads as never seen to them, and they cannot add this user
   * to groups. They are never told. @param {string} user
   * @returns {Promise<BlockState>}
   */
  block(user) {
    return this.#request({ action: 'block', user });
  }

  /** Unblocks `user`. @param {string} user @returns {Promise<BlockState>} */
  unblock(user) {
    return this.#request({ action: 'unblock', user });
  }

  /**
   * Whom this user blocked, in user id order, 100 a page (pass the reply's `cursor` while
   * `more`). @param {string} [cursor] @returns {Promise<Blocked>}
   */
  blocked(cursor) {
    return this.#request(cursor === undefined ? { action: 'blocked' } : { action: 'blocked', cursor });
  }

  /**
   * Accepts a message request (a stranger's 1:1, or a group someone who is not a contact added
   * this user to): it moves to the inbox, is pushed again, and the sender gets this user's
   * receipts and presence. Replying (`send`) in it accepts it too. Accepting what is no request
   * changes nothing. This user's other devices get a `requestState` event.
   * @param {string} conversation
   * @returns {Promise<RequestState>}
   */
  accept(conversation) {
    return this.#request({ action: 'accept', conversation });
  }

  /**
   * Declines a 1:1 message request: it leaves both folders (its log stays readable, and
   * `accept` still takes it back), and the sender's further messages in it are refused
   * (`forbidden`, the words a block gets). Rejects with `bad_request` for a group (leave it
   * instead) or a conversation that is no request to this user. The sender is never told.
   * @param {string} conversation
   * @returns {Promise<RequestState>}
   */
  decline(conversation) {
    return this.#request({ action: 'decline', conversation });
  }

  /**
   * Reports someone else's message to the operators (a copy of it as it is now, the reason,
   * optional details of at most 1 KB). Nobody else is told.
   * @param {string} conversation @param {number} seq @param {ReportReason} reason
   * @param {string} [details]
   * @returns {Promise<Reported>}
   */
  report(conversation, seq, reason, details) {
    return this.#request(
      details === undefined
        ? { action: 'report', conversation, seq, reason }
        : { action: 'report', conversation, seq, reason, details },
    );
  }

  /**
   * Uploads one file for a message: asks for a presigned form (`upload`), then POSTs the file
   * straight to the object store (S3, or messenger-local's directory) with `fetch`. Resolves
   * with the attachment id to pass to {@link send} with the same `clientMsgId`; rejects with
   * the server's error (`too_large`, `bad_request`, `forbidden`, `rate_limited`) or, when the
   * store refuses the POST, `upload_refused`.
   * @param {({ to: string } | { conversation: string }) & { file: Blob, name: string, clientMsgId: string,
   *   contentType?: string, width?: number, height?: number, durationMs?: number }} upload
   * @returns {Promise<{ attachment: string, conversation: string }>}
   */
  async upload(upload) {
    const { file, name, clientMsgId, width, height, durationMs } = upload;
    const target = 'to' in upload ? { to: upload.to } : { conversation: upload.conversation };
    const form = await this.#request({
      action: 'upload', ...target, client_msg_id: clientMsgId,
      content_type: upload.contentType ?? (file.type || 'application/octet-stream'),
      size: file.size, name,
      ...(width !== undefined ? { width } : {}),
      ...(height !== undefined ? { height } : {}),
      ...(durationMs !== undefined ? { duration_ms: durationMs } : {}),
    });
    const body = new FormData();
    for (const [k, v] of Object.entries(form.fields)) body.append(k, v);
    body.append('file', file, name);
    const posted = await fetch(form.url, { method: 'POST', body });
    if (!posted.ok) {
      throw new MessengerError('upload_refused', `the object store refused the upload (${posted.status}): ${await posted.text()}`);
    }
    return { attachment: form.attachment, conversation: form.conversation };
  }

  /**
   * Fresh download URLs for the files of message `seq` (the ones in frames expire after an hour).
   * @param {string} conversation @param {number} seq
   */
  download(conversation, seq) {
    return this.#request({ action: 'download', conversation, seq });
  }

  /**
   * Any frame, for actions this SDK does not know yet: resolves with the reply.
   * @param {ClientFrame} frame
   * @returns {Promise<ServerFrame>}
   */
  request(frame) {
    return this.#request(frame);
  }

  // ---- connection

  async #run() {
    await this.#loaded;
    let attempt = 0;
    while (!this.#stopped) {
      this.#setState('connecting');
      let wasOnline = false;
      try {
        const source = this.#opts.token;
        const token = typeof source === 'function' ? await source() : source;
        if (this.#stopped) break;
        this.#identify(token);
        wasOnline = await this.#connection(token);
      } catch (error) {
        this.emit('error', error instanceof Error ? error : new Error(String(error)));
      }
      if (this.#stopped) break;
      const reason = this.#closedFor;
      if (reason !== undefined) {
        // Told why before the close: reconnecting would push another of the user's devices off.
        this.emit('replaced', { reason });
        void this.close();
        break;
      }
      if (wasOnline) attempt = 0;
      this.#setState('offline');
      const delay = this.#noWait ? 0 : this.#backoff(attempt++);
      this.#noWait = false;
      await this.#sleep(delay);
    }
    this.#setState('closed');
  }

  /**
   * One connection, from opening to its end; resolves with whether it got online.
   * @param {string} token
   * @returns {Promise<boolean>}
   */
  #connection(token) {
    const url = `${this.#opts.url}${this.#opts.url.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`;
    const ws = new this.#opts.WebSocket(url);
    return new Promise((resolve) => {
      let online = false;
      let ended = false;
      /** @param {number} code @param {string} reason */
      const end = (code, reason) => {
        if (ended) return;
        ended = true;
        ws.removeEventListener('open', onOpen);
        ws.removeEventListener('message', onMessage);
        ws.removeEventListener('close', onClose);
        if (this.#socket === ws) this.#socket = null;
        if (this.#drop === drop) this.#drop = null;
        clearTimeout(this.#timers.heartbeat);
        this.#outbox.lostConnection();
        for (const [id, p] of this.#pending) {
          if (p.transmittedOn !== ws) continue;
          if (p.resend) {
            p.transmittedOn = null;
          } else {
            clearTimeout(p.timer);
            this.#pending.delete(id);
            p.reject(new MessengerError('disconnected', `connection lost (${code})`));
          }
        }
        this.emit('disconnect', { code, reason });
        resolve(online);
      };
      /** Ends it without waiting for a close handshake a dead peer will never complete. */
      const drop = (/** @type {number} */ code, /** @type {string} */ reason) => {
        try {
          ws.close(code, reason);
        } catch {
          // already closing
        }
        end(code, reason);
      };
      const onOpen = async () => {
        this.#socket = ws;
        this.#setState('syncing');
        this.#armHeartbeat();
        for (const p of this.#pending.values()) this.#transmit(p);
        this.#pump();
        try {
          const messages = await this.sync();
          if (ended) return;
          online = true;
          this.#setState('online');
          this.emit('synced', { messages });
        } catch (error) {
          if (ended) return;
          this.emit('error', /** @type {Error} */ (error));
          drop(4000, 'sync failed');
        }
      };
      const onMessage = (/** @type {{ data: unknown }} */ event) => this.#receive(event.data);
      const onClose = (/** @type {{ code: number, reason: string }} */ event) => end(event.code, event.reason);
      this.#drop = drop;
      ws.addEventListener('open', onOpen);
      ws.addEventListener('message', onMessage);
      ws.addEventListener('close', onClose);
    });
  }

  /** @param {unknown} data */
  #receive(data) {
    if (typeof data !== 'string') return;
    /** @type {ServerFrame} */
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      this.emit('error', new Error(`a frame that is not JSON: ${data.slice(0, 100)}`));
      return;
    }
    this.emit('frame', frame);
    const id = 'id' in frame && frame.id !== undefined ? String(frame.id) : undefined;
    const pending = id === undefined ? undefined : this.#pending.get(id);
    if (id !== undefined && pending) {
      this.#pending.delete(id);
      clearTimeout(pending.timer);
      if (frame.type === 'error') pending.reject(new MessengerError(frame.code, frame.message, frame));
      else pending.resolve(frame);
    } else if (frame.type === 'message') {
      const { type, ...view } = frame;
      this.#deliver(view);
    } else if (frame.type === 'receipt') {
      this.emit('receipt', frame);
    } else if (frame.type === 'typing') {
      this.emit('typing', frame);
    } else if (frame.type === 'muted') {
      this.emit('muted', frame);
    } else if (frame.type === 'closed') {
      this.#closedFor = frame.reason;
    } else if (frame.type === 'block_state') {
      this.emit('blockState', frame);
    } else if (frame.type === 'request_state') {
      this.emit('requestState', frame);
    } else if (frame.type === 'error') {
      // A refused request nobody waits for: a `typing`, an ack without `id`.
      this.emit('error', new MessengerError(frame.code, frame.message, frame));
    }
  }

  /**
   * Sends `frame` with a fresh id and resolves with its reply. Waits for a connection if there
   * is none; sent again on the next connection if this one drops first (every request is
   * idempotent), unless `resend` is false, when it rejects with `disconnected`.
   * @template {ClientFrame} F
   * @param {F} frame
   * @param {{ resend?: boolean }} [options]
   * @returns {Promise<Replies[F['action']]>}
   */
  #request(frame, { resend = true } = {}) {
    if (this.#stopped) return Promise.reject(new MessengerError('closed', 'the client is closed'));
    const timeoutMs = this.#opts.requestTimeoutMs;
    return new Promise((resolve, reject) => {
      const id = String(++this.#nextId);
      /** @type {Pending} */
      const p = { text: JSON.stringify({ ...frame, id }), resolve, reject, resend, transmittedOn: null };
      p.timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new MessengerError('timeout', `no reply to ${frame.action} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, p);
      this.#transmit(p);
    });
  }

  /**
   * Sends a frame that gets no reply (no `id`) on the current connection, if any.
   * @param {ClientFrame} frame
   */
  #fire(frame) {
    const ws = this.#socket;
    if (this.#stopped || !ws) return false;
    ws.send(JSON.stringify(frame));
    this.#armHeartbeat();
    return true;
  }

  /** @param {Pending} p */
  #transmit(p) {
    const ws = this.#socket;
    if (!ws || p.transmittedOn === ws) return;
    p.transmittedOn = ws;
    ws.send(p.text);
    this.#armHeartbeat();
  }

  #armHeartbeat() {
    clearTimeout(this.#timers.heartbeat);
    const ws = this.#socket;
    if (!this.#opts.heartbeatMs || !ws) return;
    this.#timers.heartbeat = setTimeout(() => {
      if (!this.#opts.heartbeatProbe) {
        this.heartbeat();
        return;
      }
      this.#request({ action: 'presence', users: [] }, { resend: false }).catch((error) => {
        if (this.#socket === ws && error.code === 'timeout') this.#drop?.(4000, 'heartbeat unanswered');
      });
    }, this.#opts.heartbeatMs);
  }

  // ---- messages, cursors, outbox

  /** @returns {Promise<number>} new messages */
  async #syncPages() {
    let delivered = 0;
    if (this.#fresh && this.#opts.initialSync === 'latest') {
      // A new device starts at the latest message of each conversation, message requests
      // included; pushes that arrived meanwhile are held by the cursors and released here.
      const [inbox, requests] = await Promise.all([this.allConversations(), this.allConversations({ folder: 'requests' })]);
      for (const c of [...inbox, ...requests]) {
        delivered += this.#emit(this.#cursors.advance(c.conversation, c.last_seq));
      }
    }
    this.#fresh = false;
    this.#persist('cursors');
    for (;;) {
      const since = this.#cursors.since();
      const reply = await this.#request({ action: 'sync', since, limit: this.#opts.syncPageSize });
      for (const m of reply.messages) delivered += this.#emit(this.#cursors.take(m));
      for (const [conversation, seq] of Object.entries(reply.since)) {
        delivered += this.#emit(this.#cursors.advance(conversation, seq));
      }
      if (!reply.more) return delivered;
    }
  }

  /**
   * Takes a pushed message (or this device's own, once stored): emitted if it is the next of
   * its conversation, held if it overtook one (a `sync` shortly fills the gap), dropped if seen.
   * @param {MessageView} message
   */
  #deliver(message) {
    this.#emit(this.#cursors.take(message));
    if (this.#cursors.hasGap(message.conversation)) {
      // Pushes may overtake each other; sync only if the gap is still there a moment later.
      this.#gaps.add(message.conversation);
      this.#later('gap', 150, () => {
        const gaps = [...this.#gaps].filter((c) => this.#cursors.hasGap(c));
        this.#gaps = new Set(gaps);
        if (gaps.length > 0) this.sync().catch(() => {});
      });
    }
  }

  /** Hands messages to the app, in order; returns how many. @param {MessageView[]} messages */
  #emit(messages) {
    if (messages.length === 0) return 0;
    this.#persist('cursors');
    for (const message of messages) {
      this.emit('message', message);
      if (this.#opts.ackDelivered && message.from !== this.user) {
        this.#toAck.add(message.conversation);
        this.#later('ack', 50, () => this.#ackDelivered());
      }
    }
    return messages.length;
  }

  #ackDelivered() {
    for (const conversation of this.#toAck) {
      const seq = this.#cursors.cursor(conversation);
      if (seq <= (this.#acked.get(conversation) ?? 0)) continue;
      // Without an `id`: the server answers only a failure, which saves an API Gateway
      // message per ack. Not connected: the next message's ack covers this one.
      if (this.#fire({ action: 'ack', conversation, seq, kind: 'delivered' })) {
        this.#acked.set(conversation, seq);
      }
    }
    this.#toAck.clear();
  }

  /** Sends what the outbox has ready, if connected. */
  #pump() {
    if (!this.#socket || this.#stopped) return;
    for (const item of this.#outbox.take(Date.now())) void this.#attempt(item);
  }

  /** @param {OutboxItem} item */
  async #attempt(item) {
    const { clientMsgId, body, replyTo } = item;
    const target = item.to !== undefined ? { to: item.to } : { conversation: /** @type {string} */ (item.conversation) };
    const reply = replyTo !== undefined ? { reply_to: replyTo } : {};
    const text = body !== '' ? { body } : {};
    const files = item.attachments?.length ? { attachments: item.attachments } : {};
    try {
      const sent = await this.#request({ action: 'send', ...target, client_msg_id: clientMsgId, ...text, ...reply, ...files }, { resend: false });
      this.#outbox.remove(clientMsgId);
      this.#outboxChanged();
      if (this.user !== undefined) {
        const { conversation, seq, sent_at } = sent;
        // This device's copy of its files, with URLs (its own message is not pushed to it).
        /** @type {{ attachments?: import('./protocol.js').Attachment[] }} */
        let own = {};
        if (item.attachments?.length) {
          own = await this.#request({ action: 'download', conversation, seq }).then(
            (d) => ({ attachments: d.attachments }),
            () => ({}),
          );
        }
        this.#deliver({ conversation, seq, from: this.user, body, sent_at, client_msg_id: clientMsgId, ...reply, ...own });
      }
      this.emit('sent', { item, sent });
      this.#waiters.get(clientMsgId)?.resolve(sent);
      this.#waiters.delete(clientMsgId);
    } catch (caught) {
      if (this.#stopped) return;
      const error = /** @type {MessengerError} */ (caught);
      if (error.code === 'timeout' || error.code === 'disconnected') {
        this.#outbox.again(clientMsgId);
      } else if (RETRYABLE_CODES.has(error.code)) {
        // Never sooner than the server asked (`rate_limited` says how long the bucket needs).
        const asked = error.frame?.retry_after_ms ?? 0;
        const at = this.#outbox.later(clientMsgId, Date.now(), (n) => Math.max(this.#backoff(n), asked));
        this.#later(`retry:${clientMsgId}`, at - Date.now(), () => this.#pump());
      } else {
        this.#outbox.remove(clientMsgId);
        this.#outboxChanged();
        this.emit('sendFailed', { item, error });
        this.#waiters.get(clientMsgId)?.reject(error);
        this.#waiters.delete(clientMsgId);
      }
    }
    this.#pump();
  }

  #outboxChanged() {
    this.#persist('outbox');
    this.emit('outbox', this.#outbox.items());
  }

  // ---- plumbing

  async #load() {
    const { storage } = this.#opts;
    const cursors = await storage.get('cursors');
    this.#fresh = cursors === undefined;
    this.#cursors = Cursors.from(cursors);
    this.#outbox = Outbox.from(await storage.get('outbox'));
  }

  /** Writes a storage key soon; writes are coalesced and never overlap. @param {'cursors' | 'outbox'} key */
  #persist(key) {
    this.#dirty.add(key);
    if (this.#saving) return;
    const write = async () => {
      while (this.#dirty.size > 0) {
        const keys = [...this.#dirty];
        this.#dirty.clear();
        for (const k of keys) {
          await this.#opts.storage.set(k, k === 'cursors' ? this.#cursors.toJSON() : this.#outbox.toJSON());
        }
      }
    };
    this.#saving = write()
      .catch((error) => this.emit('error', error))
      .finally(() => {
        this.#saving = null;
      });
  }

  /** @param {ConnectionState} state */
  #setState(state) {
    if (state === this.#state) return;
    this.#state = state;
    this.emit('state', state);
  }

  /** Runs `fn` once after `ms`, unless a timer of that name is already waiting. */
  #later(/** @type {string} */ name, /** @type {number} */ ms, /** @type {() => void} */ fn) {
    if (this.#timers[name] !== undefined || this.#stopped) return;
    this.#timers[name] = setTimeout(() => {
      delete this.#timers[name];
      fn();
    }, Math.max(0, ms));
  }

  /** Full jitter: random below min · 2^attempt, capped. @param {number} attempt */
  #backoff(attempt) {
    const { reconnectMinMs: min, reconnectMaxMs: max } = this.#opts;
    return Math.random() * Math.min(max, min * 2 ** Math.min(attempt, 30));
  }

  /** @param {number} ms */
  #sleep(ms) {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = null;
        resolve(undefined);
      };
      const timer = setTimeout(done, ms);
      this.#wake = done;
    });
  }

  /** Reads the user and device from the token (not verified: the server does that). @param {string} token */
  #identify(token) {
    try {
      const claims = JSON.parse(base64UrlDecode(token.split('.')[1] ?? ''));
      if (typeof claims.sub === 'string') this.user = claims.sub;
      this.device = typeof claims.device === 'string' ? claims.device : 'default';
    } catch {
      // not a JWT we can read: the server will say so
    }
  }

  /** The 1:1 conversation id with `other`, when this user is known. @param {string} other */
  #directId(other) {
    if (this.user === undefined) return `to:${other}`;
    const [a, b] = [this.user, other].sort();
    return `dm:${a}:${b}`;
  }
}

/** A fresh idempotency key (a UUID where the platform has one). @returns {string} */
export function newId() {
  const c = /** @type {any} */ (globalThis).crypto;
  if (typeof c?.randomUUID === 'function') return c.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}-${Math.random().toString(36).slice(2)}`;
}

/** Base64url to a string of bytes (JWT claims are ASCII here; React Native may lack `atob`). @param {string} text */
function base64UrlDecode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const ch of text) {
    const index = alphabet.indexOf(ch);
    if (index < 0) throw new Error('not base64url');
    value = ((value << 6) | index) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += String.fromCharCode((value >> bits) & 0xff);
    }
  }
  return out;
}
