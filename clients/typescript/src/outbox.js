// @ts-check
/**
 * The outbox: messages accepted by `send()` and not yet stored by the server.
 *
 * Items survive reconnects (and restarts, with persistent storage) and are retried with the same
 * `client_msg_id`, so a retry never stores a message twice. Within one conversation they go one
 * at a time, in the order they were queued, so the server's seqs keep that order.
 * @module
 */

/**
 * @typedef {object} OutboxItem
 * @property {string} clientMsgId the idempotency key, the same on every attempt
 * @property {string} [to] a user, for 1:1
 * @property {string} [conversation]
 * @property {string} body
 * @property {number} [replyTo] the message it answers
 * @property {string[]} [attachments] uploaded files (attachment ids from `upload`)
 * @property {string} queuedAt when `send()` was called (RFC 3339)
 * @property {string} key which queue it waits in: its conversation (or `to:<user>`)
 */

export class Outbox {
  /** @type {OutboxItem[]} */
  #items = [];
  /** @type {Set<string>} */
  #inFlight = new Set();
  /** @type {Map<string, number>} client_msg_id → epoch ms before which it waits (a retry) */
  #notBefore = new Map();
  /** @type {Map<string, number>} */
  #failures = new Map();

  /** @param {unknown} json what {@link Outbox#toJSON} returned, or undefined */
  static from(json) {
    const outbox = new Outbox();
    if (Array.isArray(json)) outbox.#items = json.map((item) => ({ ...item }));
    return outbox;
  }

  toJSON() {
    return this.#items.map((item) => ({ ...item }));
  }

  /** A copy of the queued items, oldest first. */
  items() {
    return this.toJSON();
  }

  /** @param {OutboxItem} item */
  add(item) {
    this.#items.push({ ...item });
  }

  /** @param {string} clientMsgId */
  has(clientMsgId) {
    return this.#items.some((i) => i.clientMsgId === clientMsgId);
  }

  /** Drops an item (stored, or refused for good). @param {string} clientMsgId */
  remove(clientMsgId) {
    this.#items = this.#items.filter((i) => i.clientMsgId !== clientMsgId);
    this.#inFlight.delete(clientMsgId);
    this.#notBefore.delete(clientMsgId);
    this.#failures.delete(clientMsgId);
  }

  /**
   * The items to send now, marked in flight: the oldest of each queue, unless it is in flight
   * or waiting to retry.
   * @param {number} now epoch ms
   */
  take(now) {
    /** @type {Set<string>} */
    const seen = new Set();
    const ready = [];
    for (const item of this.#items) {
      if (seen.has(item.key)) continue;
      seen.add(item.key);
      if (this.#inFlight.has(item.clientMsgId)) continue;
      if ((this.#notBefore.get(item.clientMsgId) ?? 0) > now) continue;
      this.#inFlight.add(item.clientMsgId);
      ready.push({ ...item });
    }
    return ready;
  }

  /** The attempt ended without an answer (timeout, lost connection): send it again. @param {string} clientMsgId */
  again(clientMsgId) {
    this.#inFlight.delete(clientMsgId);
  }

  /**
   * The server asked to retry later (`internal`, `rate_limited`): wait `delay(n)` ms, where n
   * counts such failures of this item. Returns when to try.
   * @param {string} clientMsgId
   * @param {number} now
   * @param {(failures: number) => number} delay
   */
  later(clientMsgId, now, delay) {
    const failures = (this.#failures.get(clientMsgId) ?? 0) + 1;
    this.#failures.set(clientMsgId, failures);
    this.#inFlight.delete(clientMsgId);
    const at = now + delay(failures);
    this.#notBefore.set(clientMsgId, at);
    return at;
  }

  /** Nothing is in flight any more (the connection is gone). */
  lostConnection() {
    this.#inFlight.clear();
  }
}
