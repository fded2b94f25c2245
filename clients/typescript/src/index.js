// @ts-check
/**
 * The Messenger client SDK: `new MessengerClient({ url, token })`, then `connect()`.
 * @module
 */

export { ACTIONS, MessengerClient, MessengerError, TYPING_INTERVAL_MS, newId } from './client.js';
export { applyEntry, isAmendment, revision } from './messages.js';
export { Cursors } from './cursors.js';
export { Emitter } from './emitter.js';
export { Outbox } from './outbox.js';
export { RETRYABLE_CODES } from './protocol.js';
export { MemoryStorage, WebStorage } from './storage.js';

/** @typedef {import('./client.js').ClientOptions} ClientOptions */
/** @typedef {import('./client.js').ClientEvents} ClientEvents */
/** @typedef {import('./client.js').ConnectionState} ConnectionState */
/** @typedef {import('./client.js').WebSocketLike} WebSocketLike */
/** @typedef {import('./outbox.js').OutboxItem} OutboxItem */
/** @typedef {import('./storage.js').Storage} Storage */
/** @typedef {import('./protocol.js').ClientFrame} ClientFrame */
/** @typedef {import('./protocol.js').ServerFrame} ServerFrame */
/** @typedef {import('./protocol.js').MessageView} MessageView */
/** @typedef {import('./protocol.js').ConversationView} ConversationView */
/** @typedef {import('./protocol.js').PresenceView} PresenceView */
/** @typedef {import('./protocol.js').Receipt} Receipt */
/** @typedef {import('./protocol.js').Sent} Sent */
/** @typedef {import('./protocol.js').Group} Group */
/** @typedef {import('./protocol.js').GroupEvent} GroupEvent */
/** @typedef {import('./protocol.js').LogEvent} LogEvent */
/** @typedef {import('./protocol.js').Reaction} Reaction */
/** @typedef {import('./protocol.js').Quote} Quote */
/** @typedef {import('./protocol.js').Preview} Preview */
/** @typedef {import('./protocol.js').Typing} Typing */
/** @typedef {import('./protocol.js').Muted} Muted */
/** @typedef {import('./protocol.js').BlockState} BlockState */
/** @typedef {import('./protocol.js').Blocked} Blocked */
/** @typedef {import('./protocol.js').BlockedView} BlockedView */
/** @typedef {import('./protocol.js').RequestState} RequestState */
/** @typedef {import('./protocol.js').Folder} Folder */
/** @typedef {import('./protocol.js').Reported} Reported */
/** @typedef {import('./protocol.js').ReportReason} ReportReason */
/** @typedef {import('./protocol.js').AmendedView} AmendedView */
/** @typedef {import('./protocol.js').ErrorCode} ErrorCode */
/** @typedef {import('./protocol.js').Attachment} Attachment */
/** @typedef {import('./protocol.js').Upload} Upload */
/** @typedef {import('./protocol.js').Download} Download */
