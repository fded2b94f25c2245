// @ts-check
/**
 * What this device has of each conversation's log, for `sync` and de-duplication.
 *
 * Per conversation: the cursor (every seq up to it has been seen) and the seqs seen above it
 * (pushes may arrive out of order, or after a gap that the next `sync` fills). A message is new
 * exactly once per (conversation, seq).
 * @module
 */

/** @typedef {{ cursors: Record<string, number>, ahead: Record<string, number[]> }} CursorsJSON */

export class Cursors {
  /** @type {Map<string, number>} */
  #cursor = new Map();
  /** @type {Map<string, Set<number>>} */
  #ahead = new Map();

  /** @param {unknown} json what {@link Cursors#toJSON} returned, or undefined */
  static from(json) {
    const c = new Cursors();
    const value = /** @type {Partial<CursorsJSON> | undefined} */ (json);
    for (const [conversation, seq] of Object.entries(value?.cursors ?? {})) {
      c.#cursor.set(conversation, seq);
    }
    for (const [conversation, seqs] of Object.entries(value?.ahead ?? {})) {
      c.#ahead.set(conversation, new Set(seqs));
    }
    return c;
  }

  /** @returns {CursorsJSON} */
  toJSON() {
    /** @type {Record<string, number[]>} */
    const ahead = {};
    for (const [conversation, seqs] of this.#ahead) ahead[conversation] = [...seqs];
    return { cursors: Object.fromEntries(this.#cursor), ahead };
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
   * Records a message; true if it is new, false if this device has seen it.
   * @param {string} conversation
   * @param {number} seq
   */
  accept(conversation, seq) {
    const cursor = this.cursor(conversation);
    const ahead = this.#ahead.get(conversation);
    if (seq <= cursor || ahead?.has(seq)) return false;
    if (seq === cursor + 1) {
      this.#cursor.set(conversation, seq);
      this.#fold(conversation);
    } else if (ahead) {
      ahead.add(seq);
    } else {
      this.#ahead.set(conversation, new Set([seq]));
    }
    return true;
  }

  /**
   * Everything up to `seq` has been seen: what a `sync` reply's `since` says (a new group
   * member's log starts above 1, so only the server can say where the gaps end).
   * @param {string} conversation
   * @param {number} seq
   */
  advance(conversation, seq) {
    if (seq <= this.cursor(conversation)) return;
    this.#cursor.set(conversation, seq);
    const ahead = this.#ahead.get(conversation);
    if (ahead) for (const s of ahead) if (s <= seq) ahead.delete(s);
    this.#fold(conversation);
  }

  /**
   * Whether a message above the cursor was seen while one below it was not (a `sync` fills it).
   * @param {string} conversation
   */
  hasGap(conversation) {
    return (this.#ahead.get(conversation)?.size ?? 0) > 0;
  }

  /** Moves the cursor over the seqs seen just above it. @param {string} conversation */
  #fold(conversation) {
    const ahead = this.#ahead.get(conversation);
    if (!ahead) return;
    let cursor = this.cursor(conversation);
    while (ahead.delete(cursor + 1)) cursor += 1;
    this.#cursor.set(conversation, cursor);
    if (ahead.size === 0) this.#ahead.delete(conversation);
  }
}
