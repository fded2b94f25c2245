//! What the use cases share about attachments (`upload.rs` and `download.rs` are the routes):
//! checking the files of a `send` before the message is stored, minting download URLs whenever
//! a frame with attachments is produced (live delivery, `sync`, `history`, `download`), and
//! deleting the objects of a deleted message.

use crate::attachments::{Attachment, AttachmentId, attachment_of, disposition, object_key};
use crate::domain::{ClientMsgId, ConversationId, Message, UserId};
use crate::protocol::{AttachmentView, MessageView};
use crate::{App, Error};
use futures_util::future::try_join_all;
use std::collections::BTreeSet;

/// The frame's attachment ids, checked before any request: at most `per_message`, no repeats.
pub(crate) fn check_ids(app: &App, ids: &[AttachmentId]) -> Result<(), Error> {
    let most = app.limits.attachments.per_message;
    if ids.len() > most {
        return Err(Error::TooLarge(format!(
            "{} attachments; a message has at most {most}",
            ids.len()
        )));
    }
    if ids.iter().collect::<BTreeSet<_>>().len() != ids.len() {
        return Err(Error::BadRequest("an attachment is listed twice".into()));
    }
    Ok(())
}

/// The attachments of a message `sender` is about to store in `conv` as `message`: each id must
/// name an object the sender uploaded in this conversation (it is looked up under their key
/// there, so another conversation's or another user's upload is not found), through a form
/// made for this message, of the size and type declared. Each is then marked attached (so the
/// abandoned-upload rule spares it) before the message is stored: a failure after this point
/// leaves, at worst, an object kept that no message shows. Requests: one HeadObject and one
/// tagging per file, in parallel.
pub(crate) async fn attach(
    app: &App,
    conv: &ConversationId,
    sender: &UserId,
    message: &ClientMsgId,
    ids: &[AttachmentId],
) -> Result<Vec<Attachment>, Error> {
    let files = try_join_all(ids.iter().map(|id| async move {
        let key = object_key(conv, sender, id);
        let info = app.objects.head(&key).await?.ok_or_else(|| {
            Error::NotFound(format!(
                "no upload {id} of yours in {conv}: upload the file first (and wait for its \
                 POST to succeed)"
            ))
        })?;
        attachment_of(&info, id, message)
    }))
    .await?;
    try_join_all(ids.iter().map(|id| {
        let key = object_key(conv, sender, id);
        async move { app.objects.mark_attached(&key).await }
    }))
    .await?;
    Ok(files)
}

/// Fills in a download URL for every attachment of `views` (messages of any conversations),
/// valid for the configured lifetime from now.
pub(crate) async fn sign(app: &App, views: &mut [MessageView]) -> Result<(), Error> {
    let now = app.now();
    let expires_at = now + app.limits.attachments.download_ttl;
    for view in views.iter_mut() {
        sign_one(app, view, now, expires_at).await?;
        if let Some(target) = view.target.as_deref_mut() {
            sign_one(app, target, now, expires_at).await?;
        }
    }
    Ok(())
}

async fn sign_one(
    app: &App,
    view: &mut MessageView,
    now: chrono::DateTime<chrono::Utc>,
    expires_at: chrono::DateTime<chrono::Utc>,
) -> Result<(), Error> {
    for a in &mut view.attachments {
        let key = object_key(&view.conversation, &view.from, &a.attachment.id);
        let url = app
            .objects
            .download_url(&key, &disposition(&a.attachment), now, expires_at)
            .await?;
        a.url = Some(url.url);
        a.url_expires_at = Some(url.expires_at);
    }
    Ok(())
}

/// The view of a new message for its live delivery, with URLs. A message is already stored
/// when this runs: if URLs cannot be minted, it goes out without them (recipients ask
/// `download`) rather than not at all.
pub(crate) async fn signed_view(app: &App, m: &Message) -> MessageView {
    let mut view = MessageView::from(m);
    if let Err(e) = sign(app, std::slice::from_mut(&mut view)).await {
        tracing::error!(conversation = %m.conversation, seq = m.seq, error = ?e, "cannot mint download URLs");
    }
    view
}

/// The attachments of `m` with fresh URLs.
pub(crate) async fn signed_attachments(
    app: &App,
    m: &Message,
) -> Result<Vec<AttachmentView>, Error> {
    let mut view = MessageView::from(m);
    sign(app, std::slice::from_mut(&mut view)).await?;
    Ok(view.attachments)
}

/// Deletes the objects of `files`, sent by `from` in `conv`, when a deletion for everyone took
/// them off their message. Best effort: the message no longer shows them to anyone; an object
/// left behind is only storage (and S3's retention rule ends it).
pub(crate) async fn delete_files(
    app: &App,
    conv: &ConversationId,
    from: &UserId,
    files: &[Attachment],
) {
    for a in files {
        let key = object_key(conv, from, &a.id);
        match app.objects.delete(&key).await {
            Ok(()) => tracing::info!(conversation = %conv, key, "attachment deleted"),
            Err(e) => {
                tracing::warn!(conversation = %conv, key, error = ?e, "could not delete an attachment")
            }
        }
    }
}
