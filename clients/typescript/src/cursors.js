// @ts-check
/**
 * What this device has of each conversation's log, for `sync`, de-duplication and order.
 *
 * Per conversation, the cursor: every message up to it has been handed to the app. A message
 * above the cursor + 1 (a push that overtook another, or arrived after a gap) is held until the
 * gap is filled, by a push or by `sync`, so the app gets each conversation's messages once and
 * in seq order. Only the cursors are stored: held messages come again with the next `sync`.
 * @module
 */

/** @typedef {import('./protocol.js').MessageView} MessageView */
/** @typedef {{ cursors: Record<string, number> }} CursorsJSON */

export class Cursors {
  /** @type {Map<string, number>} */
  #cursor = new Map();
  /** @type {Map<string, Map<number, MessageView>>} */
  #held = new Map();

  /** @param {unknown} json what {@link Cursors#toJSON} returned, or undefined */
  static from(json) {
    const c = new Cursors();
    const value = /** @type {Partial<CursorsJSON> | undefined} */ (json);
    for (const [conversation, seq] of Object.entries(value?.cursors ?? {})) {
      c.#cursor.set(conversation, seq);
    }
    return c;
  }

  /** @returns {CursorsJSON} */
  toJSON() {
    return { cursors: Object.fromEntries(this.#cursor) };
  }

  /** The cursors, as `sync` takes them. */
  since() {
    return Object.fromEntries(this.#cursor);
  }

  /** @param {string} conversation */
  cursor(conversation) {
    return this.#cursor.get(conversation) ?? 0;
  }

  /**
   * Takes a message; returns the messages it makes ready, in order: none if it was seen before
   * or is held behind a gap, else it and the held ones it reaches.
   * @param {MessageView} message
   * @returns {MessageView[]}
   */
  take(message) {
    const { conversation, seq } = message;
    const cursor = this.cursor(conversation);
    const held = this.#held.get(conversation);
    if (seq <= cursor || held?.has(seq)) return [];
    if (seq !== cursor + 1) {
      if (held) held.set(seq, message);
      else this.#held.set(conversation, new Map([[seq, message]]));
      return [];
    }
    this.#cursor.set(conversation, seq);
    return [message, ...this.#release(conversation)];
  }

  /**
   * There is nothing more to wait for up to `seq` (a `sync` reply's `since`: a new group
   * member's log starts above 1, so only the server can say where a gap ends). Returns the held
   * messages this makes ready, in order.
   * @param {string} conversation
   * @param {number} seq
   * @returns {MessageView[]}
   */
  advance(conversation, seq) {
    if (seq <= this.cursor(conversation)) return [];
    this.#cursor.set(conversation, seq);
    const held = this.#held.get(conversation);
    /** @type {MessageView[]} */
    const ready = [];
    if (held) {
      for (const s of [...held.keys()].sort((a, b) => a - b)) {
        if (s > seq) break;
        ready.push(/** @type {MessageView} */ (held.get(s)));
        held.delete(s);
      }
    }
    return [...ready, ...this.#release(conversation)];
  }

  /** Whether messages are held behind a gap. @param {string} conversation */
  hasGap(conversation) {
    return (this.#held.get(conversation)?.size ?? 0) > 0;
  }

  /** Moves the cursor over held messages just above it; returns them. @param {string} conversation */
  #release(conversation) {
    const held = this.#held.get(conversation);
    /** @type {MessageView[]} */
    const ready = [];
    if (!held) return ready;
    let cursor = this.cursor(conversation);
    for (let next = held.get(cursor + 1); next; next = held.get(cursor + 1)) {
      held.delete(cursor + 1);
      ready.push(next);
      cursor += 1;
    }
    this.#cursor.set(conversation, cursor);
    if (held.size === 0) this.#held.delete(conversation);
    return ready;
  }
}
