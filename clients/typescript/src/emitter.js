// @ts-check
/**
 * A small typed event emitter (React Native has no EventTarget).
 * @module
 */

/**
 * @template {Record<string, unknown>} Events event name → the value its listeners receive
 */
export class Emitter {
  /** @type {Map<keyof Events, Set<(value: any) => void>>} */
  #listeners = new Map();

  /**
   * Calls `listener` on every `event`; returns a function that stops it.
   * @template {keyof Events} K
   * @param {K} event
   * @param {(value: Events[K]) => void} listener
   * @returns {() => void}
   */
  on(event, listener) {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => this.off(event, listener);
  }

  /**
   * @template {keyof Events} K
   * @param {K} event
   * @param {(value: Events[K]) => void} listener
   */
  off(event, listener) {
    this.#listeners.get(event)?.delete(listener);
  }

  /**
   * Resolves with the next `event` whose value satisfies `predicate`.
   * @template {keyof Events} K
   * @param {K} event
   * @param {(value: Events[K]) => boolean} [predicate]
   * @returns {Promise<Events[K]>}
   */
  once(event, predicate = () => true) {
    return new Promise((resolve) => {
      const stop = this.on(event, (value) => {
        if (!predicate(value)) return;
        stop();
        resolve(value);
      });
    });
  }

  /**
   * A listener that throws does not stop the others, nor the client: its error is reported
   * the way the platform reports uncaught errors.
   * @protected
   * @template {keyof Events} K
   * @param {K} event
   * @param {Events[K]} value
   */
  emit(event, value) {
    for (const listener of [...(this.#listeners.get(event) ?? [])]) {
      try {
        listener(value);
      } catch (error) {
        const report = /** @type {any} */ (globalThis).reportError;
        if (typeof report === 'function') report(error);
        else
          queueMicrotask(() => {
            throw error;
          });
      }
    }
  }
}
