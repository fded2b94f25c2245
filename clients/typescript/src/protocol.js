// @ts-check
/**
 * The wire frames of the Messenger protocol, as types. docs/asyncapi.yaml is the truth (the SDK
 * tests validate every frame the SDK sends and receives against it); these mirror its schemas
 * one to one, under the same names.
 * @module
 */

/** @typedef {string | number} RequestId */

/**
 * @typedef {'bad_request' | 'unknown_action' | 'too_large' | 'forbidden' | 'not_found'
 *   | 'rate_limited' | 'internal'} ErrorCode
 */

/** @typedef {'delivered' | 'read'} ReceiptKind */
/** @typedef {'admin' | 'member'} Role */
/** @typedef {'apns' | 'apns_sandbox' | 'fcm'} Platform */

/**
 * A membership change, stored as a system message (`from` = who did it, `body` empty).
 * @typedef {{ type: 'group_created', name: string, members: string[] }
 *   | { type: 'members_added' | 'members_removed', users: string[] }
 *   | { type: 'member_left', promoted?: string[] }
 *   | { type: 'group_renamed', name: string }} GroupEvent
 */

/**
 * A message of a conversation's log.
 * @typedef {object} MessageView
 * @property {string} conversation
 * @property {number} seq per conversation, from 1, without gaps: order by it, never by clock
 * @property {string} from the sender (always the authenticated user who sent it)
 * @property {string} body empty on system messages
 * @property {GroupEvent} [event] present on system messages
 * @property {string} sent_at RFC 3339, UTC, milliseconds
 * @property {string} client_msg_id the sender's idempotency key
 */

// ---- client → server (one per action; `id` is added by the client)

/**
 * @typedef {{ action: 'send', client_msg_id: string, body: string }
 *   & ({ to: string, conversation?: undefined } | { conversation: string, to?: undefined })} SendRequest
 */
/** @typedef {{ action: 'ack', conversation: string, seq: number, kind: ReceiptKind }} AckRequest */
/** @typedef {{ action: 'sync', since?: Record<string, number>, limit?: number }} SyncRequest */
/** @typedef {{ action: 'history', conversation: string, before?: number, limit?: number }} HistoryRequest */
/** @typedef {{ action: 'receipts', conversation: string }} ReceiptsRequest */
/** @typedef {{ action: 'presence', users: string[] }} PresenceRequest */
/** @typedef {{ action: 'heartbeat' }} HeartbeatRequest (never answered) */
/** @typedef {{ action: 'create_group', name: string, members?: string[], client_msg_id?: string }} CreateGroupRequest */
/** @typedef {{ action: 'add_members', conversation: string, users: string[], client_msg_id?: string }} AddMembersRequest */
/** @typedef {{ action: 'remove_members', conversation: string, users: string[], client_msg_id?: string }} RemoveMembersRequest */
/** @typedef {{ action: 'rename_group', conversation: string, name: string, client_msg_id?: string }} RenameGroupRequest */
/** @typedef {{ action: 'leave_group', conversation: string, client_msg_id?: string }} LeaveGroupRequest */
/** @typedef {{ action: 'conversations', after?: string, limit?: number }} ConversationsRequest */
/** @typedef {{ action: 'register_push', platform: Platform, token: string, preview?: boolean }} RegisterPushRequest */
/** @typedef {{ action: 'unregister_push' }} UnregisterPushRequest */

/**
 * @typedef {SendRequest | AckRequest | ReceiptsRequest | SyncRequest | HistoryRequest
 *   | PresenceRequest | HeartbeatRequest | CreateGroupRequest | AddMembersRequest | RemoveMembersRequest | RenameGroupRequest
 *   | LeaveGroupRequest | ConversationsRequest | RegisterPushRequest
 *   | UnregisterPushRequest} ClientFrame
 */

// ---- server → client

/**
 * @typedef {{ type: 'sent', id?: RequestId, client_msg_id: string, conversation: string,
 *   seq: number, sent_at: string, duplicate?: true }} Sent
 */
/** @typedef {MessageView & { type: 'message' }} Message */
/** @typedef {{ type: 'receipt', conversation: string, seq: number, kind: ReceiptKind, by: string }} Receipt */
/** @typedef {{ type: 'acked', id?: RequestId, conversation: string, seq: number, kind: ReceiptKind }} Acked */
/** @typedef {{ user: string, delivered: number, read: number }} PointersView */
/**
 * Every member's pointers, and the lowest of the other members' (`delivered`: every message up
 * to it reached everyone; `read`: everyone read it).
 * @typedef {{ type: 'receipts', id?: RequestId, conversation: string, members: PointersView[],
 *   delivered: number, read: number }} Receipts
 */
/**
 * @typedef {{ type: 'sync', id?: RequestId, messages: MessageView[], more: boolean,
 *   since: Record<string, number> }} Sync
 */
/**
 * @typedef {{ type: 'history', id?: RequestId, conversation: string, messages: MessageView[],
 *   more: boolean }} History
 */
/** @typedef {{ user: string, online: boolean, last_seen: string | null }} PresenceView */
/** @typedef {{ type: 'presence', id?: RequestId, users: PresenceView[] }} Presence */
/** @typedef {{ user: string, role: Role }} MemberView */
/**
 * @typedef {{ type: 'group', id?: RequestId, conversation: string, name: string,
 *   members: MemberView[], seq: number }} Group
 */
/** @typedef {{ type: 'left', id?: RequestId, conversation: string, seq: number }} Left */
/**
 * One line of the inbox. Unread = `last_seq - read`.
 * @typedef {object} ConversationView
 * @property {string} conversation
 * @property {'direct' | 'group'} kind
 * @property {string} [name] the group's name
 * @property {string} [with] the other user of a 1:1 conversation
 * @property {Role} role
 * @property {number} last_seq
 * @property {number} delivered
 * @property {number} read
 */
/**
 * @typedef {{ type: 'conversations', id?: RequestId, conversations: ConversationView[],
 *   more: boolean }} Conversations
 */
/**
 * @typedef {{ type: 'push_registered', id?: RequestId, device: string, platform: Platform,
 *   preview: boolean }} PushRegistered
 */
/** @typedef {{ type: 'push_unregistered', id?: RequestId, device: string }} PushUnregistered */
/**
 * @typedef {{ type: 'error', id?: RequestId, code: ErrorCode, message: string,
 *   client_msg_id?: string }} ErrorFrame
 */

/**
 * @typedef {Sent | Message | Receipt | Acked | Receipts | Sync | History | Presence | Group | Left
 *   | Conversations | PushRegistered | PushUnregistered | ErrorFrame} ServerFrame
 */

/**
 * The reply each action gets when it succeeds (otherwise an `error` frame).
 * @typedef {object} Replies
 * @property {Sent} send
 * @property {Acked} ack
 * @property {Receipts} receipts
 * @property {Sync} sync
 * @property {History} history
 * @property {Presence} presence
 * @property {never} heartbeat never answered
 * @property {Group} create_group
 * @property {Group} add_members
 * @property {Group} remove_members
 * @property {Group} rename_group
 * @property {Left} leave_group
 * @property {Conversations} conversations
 * @property {PushRegistered} register_push
 * @property {PushUnregistered} unregister_push
 */

/**
 * Error codes worth retrying: the request may succeed later, and every request is idempotent.
 * @type {ReadonlySet<string>}
 */
export const RETRYABLE_CODES = new Set(['internal', 'rate_limited']);
