// @ts-check
/**
 * Keeping an app's copy of a conversation current. Edits, deletions and reactions are entries
 * of the log that carry the message they changed, as it now is (`target`); of two states of one
 * message, the one with the higher `rev` is the newer (docs/protocol.md, "Converging").
 * @module
 */

/** @typedef {import('./protocol.js').MessageView} MessageView */

/** The entry that last changed `m` (its own seq while unchanged). @param {MessageView} m */
export function revision(m) {
  return m.rev ?? m.seq;
}

/**
 * Applies one entry of a conversation's log (pushed, synced or from history) to `messages`
 * (by seq): a chat message or membership change is stored as it is; an edit, deletion or
 * reaction replaces the message it changed when its state is newer than the one held (keeping
 * the held quote: targets come without one). Returns the message that changed, if any.
 * @param {Map<number, MessageView>} messages
 * @param {MessageView} entry
 * @returns {MessageView | undefined}
 */
export function applyEntry(messages, entry) {
  const fresh = entry.event && 'seq' in entry.event ? entry.target : entry;
  if (!fresh) return undefined; // a change to a message this user may not see
  const held = messages.get(fresh.seq);
  if (held && revision(held) > revision(fresh)) return undefined;
  const next = held?.quote && !fresh.quote ? { ...fresh, quote: held.quote } : fresh;
  messages.set(next.seq, next);
  return next;
}

/** Whether an entry records a change to another message (not a message of its own). @param {MessageView} entry */
export function isAmendment(entry) {
  return entry.event !== undefined && 'seq' in entry.event;
}
