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
 *   | 'conflict' | 'rate_limited' | 'internal'} ErrorCode
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
 * A change to the earlier message `seq`, recorded as an entry of the log (`from` = who did
 * it); the entry carries that message as it now is in `target`.
 * @typedef {{ type: 'message_edited' | 'message_deleted', seq: number }
 *   | { type: 'reaction_added' | 'reaction_removed', seq: number, emoji: string }} AmendmentEvent
 */

/** @typedef {GroupEvent | AmendmentEvent} LogEvent */

/** @typedef {{ emoji: string, users: string[] }} Reaction */

/**
 * The message a reply answers, as it now is.
 * @typedef {{ from: string, text?: string, edited?: true, deleted?: true }} Quote
 */

/**
 * An entry of a conversation's log, in its current state.
 * @typedef {object} MessageView
 * @property {string} conversation
 * @property {number} seq per conversation, from 1, without gaps: order by it, never by clock
 * @property {string} from the sender (always the authenticated user who sent it)
 * @property {string} [body] the latest text; empty on system entries; absent once deleted
 * @property {LogEvent} [event] present on system entries
 * @property {string} sent_at RFC 3339, UTC, milliseconds
 * @property {string} client_msg_id the sender's idempotency key
 * @property {number} [reply_to] the message this one answers
 * @property {Quote} [quote] that message as it now is (absent when you may not see it)
 * @property {string} [edited_at] when the body was last edited
 * @property {true} [deleted] deleted for everyone: no body
 * @property {Reaction[]} [reactions] one per emoji, in the order first used
 * @property {number} [rev] the entry that last changed it: of two states, the higher `rev` wins
 * @property {MessageView} [target] on an edit/deletion/reaction entry: the message it changed
 * @property {Attachment[]} [attachments] files sent with it, each with a download URL
 */

/**
 * A file of a message. `url` is a presigned GET minted when the frame was produced, valid until
 * `url_expires_at` (an hour by default); `download` gets fresh ones.
 * @typedef {object} Attachment
 * @property {string} id
 * @property {string} content_type
 * @property {number} size bytes
 * @property {string} name
 * @property {number} [width] @property {number} [height] @property {number} [duration_ms]
 * @property {string} [url]
 * @property {string} [url_expires_at]
 */

// ---- client → server (one per action; `id` is added by the client)

/**
 * @typedef {{ action: 'send', client_msg_id: string, body?: string, reply_to?: number, attachments?: string[] }
 *   & ({ to: string, conversation?: undefined } | { conversation: string, to?: undefined })} SendRequest
 */
/**
 * @typedef {{ action: 'upload', client_msg_id: string, content_type: string, size: number, name: string,
 *   width?: number, height?: number, duration_ms?: number }
 *   & ({ to: string, conversation?: undefined } | { conversation: string, to?: undefined })} UploadRequest
 */
/** @typedef {{ action: 'download', conversation: string, seq: number }} DownloadRequest */
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
/**
 * The folders of the inbox: `inbox`, and `requests` (message requests waiting for you; declined
 * ones are in neither).
 * @typedef {'inbox' | 'requests'} Folder
 */
/** @typedef {{ action: 'conversations', cursor?: string, after?: string, limit?: number, folder?: Folder }} ConversationsRequest */
/** @typedef {{ action: 'register_push', platform: Platform, token: string, preview?: boolean }} RegisterPushRequest */
/** @typedef {{ action: 'unregister_push' }} UnregisterPushRequest */
/** @typedef {{ action: 'typing', conversation: string }} TypingRequest */
/** @typedef {{ action: 'edit', conversation: string, seq: number, body: string }} EditRequest */
/** @typedef {{ action: 'delete', conversation: string, seq: number }} DeleteRequest */
/** @typedef {{ action: 'react', conversation: string, seq: number, emoji: string, remove?: boolean }} ReactRequest */
/** @typedef {{ action: 'mute', conversation: string, until?: string | null }} MuteRequest */
/** @typedef {{ action: 'unmute', conversation: string }} UnmuteRequest */
/** @typedef {{ action: 'block', user: string }} BlockRequest */
/** @typedef {{ action: 'unblock', user: string }} UnblockRequest */
/** @typedef {{ action: 'blocked', cursor?: string }} BlockedRequest */
/** @typedef {{ action: 'accept', conversation: string }} AcceptRequest */
/** @typedef {{ action: 'decline', conversation: string }} DeclineRequest */
/** @typedef {'spam' | 'harassment' | 'hate' | 'nudity' | 'violence' | 'self_harm' | 'other'} ReportReason */
/**
 * @typedef {{ action: 'report', conversation: string, seq: number, reason: ReportReason,
 *   details?: string }} ReportRequest
 */

/**
 * @typedef {SendRequest | AckRequest | ReceiptsRequest | SyncRequest | HistoryRequest
 *   | PresenceRequest | HeartbeatRequest | CreateGroupRequest | AddMembersRequest | RemoveMembersRequest | RenameGroupRequest
 *   | LeaveGroupRequest | ConversationsRequest | RegisterPushRequest
 *   | UnregisterPushRequest | TypingRequest | EditRequest | DeleteRequest | ReactRequest
 *   | MuteRequest | UnmuteRequest | BlockRequest | UnblockRequest | BlockedRequest
 *   | ReportRequest | AcceptRequest | DeclineRequest | UploadRequest | DownloadRequest} ClientFrame
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
 * The inbox line's latest chat message or membership change.
 * @typedef {{ seq: number, from: string, sent_at: string, text?: string,
 *   event?: 'group_created' | 'members_added' | 'members_removed' | 'member_left' | 'group_renamed',
 *   edited?: true, deleted?: true }} Preview
 */
/**
 * One line of the inbox (the inbox comes latest activity first).
 * @typedef {object} ConversationView
 * @property {string} conversation
 * @property {'direct' | 'group'} kind
 * @property {string} [name] the group's name
 * @property {string} [with] the other user of a 1:1 conversation
 * @property {Role} role
 * @property {number} last_seq
 * @property {number} delivered
 * @property {number} read
 * @property {number} unread chat messages after the read pointer (not system entries, not yours)
 * @property {boolean} muted no pushes for it now
 * @property {string} [muted_until] when the mute ends (absent while muted: until unmuted)
 * @property {Preview} [last]
 * @property {true} [request] a message request to this user, not accepted yet (the `requests`
 *   folder): the sender gets no receipts or presence from this user until `accept` or a reply
 * @property {true} [awaiting] this user's own message request, not accepted yet: the other's
 *   receipts and presence stay hidden until they accept
 */
/**
 * One page of a folder. `unread_total` counts the inbox only (the app badge; requests are not
 * in it), `requests` how many message requests wait.
 * @typedef {{ type: 'conversations', id?: RequestId, conversations: ConversationView[],
 *   more: boolean, cursor?: string, unread_total: number, requests: number }} Conversations
 */
/** @typedef {{ type: 'typing', conversation: string, user: string }} Typing */
/**
 * The reply to `edit`, `delete` and `react`: the message as it now is, and the log entry that
 * recorded the change as the other devices get it (absent, with `unchanged`, when nothing
 * changed).
 * @typedef {{ id?: RequestId, conversation: string, message: MessageView, entry?: MessageView,
 *   unchanged?: true }} AmendedView
 */
/** @typedef {AmendedView & { type: 'edited' }} Edited */
/** @typedef {AmendedView & { type: 'deleted' }} Deleted */
/** @typedef {AmendedView & { type: 'reacted' }} Reacted */
/**
 * The reply to `mute` and `unmute`, also pushed to your other devices.
 * @typedef {{ type: 'muted', id?: RequestId, conversation: string, muted: boolean,
 *   until?: string }} Muted
 */
/**
 * The reply to `block` and `unblock`, also pushed to your other devices (never to the user
 * concerned).
 * @typedef {{ type: 'block_state', id?: RequestId, user: string, blocked: boolean }} BlockState
 */
/** @typedef {{ user: string, blocked_at: string }} BlockedView */
/**
 * The reply to `accept` and `decline`, also pushed to your other devices (never to the
 * request's sender).
 * @typedef {{ type: 'request_state', id?: RequestId, conversation: string,
 *   state: 'accepted' | 'declined' }} RequestState
 */
/**
 * The reply to `report`: `duplicate` when this user reported the message earlier the same day.
 * @typedef {{ type: 'reported', id?: RequestId, report: string, conversation: string,
 *   seq: number, duplicate?: true }} Reported
 */
/**
 * The reply to `blocked`: ask again with `cursor` while `more`.
 * @typedef {{ type: 'blocked', id?: RequestId, users: BlockedView[], more: boolean,
 *   cursor?: string }} Blocked
 */
/**
 * @typedef {{ type: 'push_registered', id?: RequestId, device: string, platform: Platform,
 *   preview: boolean }} PushRegistered
 */
/** @typedef {{ type: 'push_unregistered', id?: RequestId, device: string }} PushUnregistered */
/**
 * The reply to `upload`: a presigned POST. POST `multipart/form-data` to `url` with every field
 * of `fields`, then the file as field `file`, before `expires_at`.
 * @typedef {{ type: 'upload', id?: RequestId, conversation: string, attachment: string, url: string,
 *   fields: Record<string, string>, expires_at: string }} Upload
 */
/**
 * The reply to `download`: a message's attachments with fresh URLs.
 * @typedef {{ type: 'download', id?: RequestId, conversation: string, seq: number,
 *   attachments: Attachment[] }} Download
 */
/**
 * @typedef {{ type: 'error', id?: RequestId, code: ErrorCode, message: string,
 *   client_msg_id?: string, retry_after_ms?: number }} ErrorFrame
 */
/** @typedef {'too_many_connections'} CloseReason */
/** @typedef {{ type: 'closed', reason: CloseReason }} Closed */

/**
 * @typedef {Sent | Message | Receipt | Acked | Receipts | Sync | History | Presence | Group | Left
 *   | Conversations | PushRegistered | PushUnregistered | Typing | Edited | Deleted | Reacted
 *   | Muted | Upload | Download | Closed | BlockState | Blocked | Reported | RequestState
 *   | ErrorFrame} ServerFrame
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
 * @property {never} typing not answered unless refused
 * @property {Edited} edit
 * @property {Deleted} delete
 * @property {Reacted} react
 * @property {Muted} mute
 * @property {Muted} unmute
 * @property {BlockState} block
 * @property {BlockState} unblock
 * @property {Blocked} blocked
 * @property {Reported} report
 * @property {RequestState} accept
 * @property {RequestState} decline
 * @property {Upload} upload
 * @property {Download} download
 */

/**
 * Error codes worth retrying: the request may succeed later, and every request is idempotent.
 * @type {ReadonlySet<string>}
 */
export const RETRYABLE_CODES = new Set(['internal', 'rate_limited']);
