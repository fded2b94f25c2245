// @ts-check
/**
 * Where the client keeps what must survive a reconnect (and, with persistent storage, a
 * restart): its sync cursors and its outbox. Values are JSON-compatible.
 * @module
 */

/**
 * A key-value store; either method may return a promise. Give each user and device its own.
 * @typedef {object} Storage
 * @property {(key: string) => unknown} get the stored value, or undefined
 * @property {(key: string, value: unknown) => unknown} set
 */

/** The default: kept in memory, gone with the process (a new process syncs from the start). */
export class MemoryStorage {
  /** @type {Map<string, string>} */
  #values = new Map();

  /** @param {string} key */
  get(key) {
    const text = this.#values.get(key);
    return text === undefined ? undefined : JSON.parse(text);
  }

  /** @param {string} key @param {unknown} value */
  set(key, value) {
    this.#values.set(key, JSON.stringify(value));
  }
}

/** The Web Storage API (`localStorage`, `sessionStorage`), under a key prefix. */
export class WebStorage {
  /**
   * @param {{ getItem(key: string): string | null, setItem(key: string, value: string): void }} store
   * @param {string} prefix e.g. `messenger:alice:laptop:`
   */
  constructor(store, prefix) {
    this.store = store;
    this.prefix = prefix;
  }

  /** @param {string} key */
  get(key) {
    const text = this.store.getItem(this.prefix + key);
    return text === null ? undefined : JSON.parse(text);
  }

  /** @param {string} key @param {unknown} value */
  set(key, value) {
    this.store.setItem(this.prefix + key, JSON.stringify(value));
  }
}
