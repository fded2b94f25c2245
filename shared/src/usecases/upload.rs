//! Use case of the `upload` route: a signed form to upload one file straight to the object
//! store.

use super::{conversation_of, require_member, take_token};
use crate::attachments::{AttachmentId, UploadSpec};
use crate::protocol::{ServerFrame, UploadFrame};
use crate::ratelimit::Bucket;
use crate::request::Request;
use crate::{App, Error};

/// `upload`: checks the file against the rules (size, type, name, metadata), takes a token from
/// the caller's `uploads` rate limit (a burst of 30, then 30 a minute, by default), checks they may write to the conversation
/// (a member, or one of the two users of a 1:1 conversation, which the first `send` creates),
/// then answers with a presigned POST for a fresh attachment id. Nothing is stored: the object
/// exists once the client has posted it, and belongs to no message until `send` attaches it.
///
/// Requests: the rate-limit token (one conditional update of the caller's presence item) and, for a group, the caller's
/// membership (one read); the form is signed locally.
pub async fn upload(app: &App, req: &Request, frame: UploadFrame) -> Result<(), Error> {
    let me = &req.caller.user;
    let conv = conversation_of(me, frame.to, frame.conversation)?;
    let limits = &app.limits.attachments;
    let spec = UploadSpec::new(
        limits,
        frame.content_type,
        frame.size,
        frame.name,
        frame.width,
        frame.height,
        frame.duration_ms,
    )?;
    // The token once the file passes the rules (as `send` does): a refusal costs nothing.
    take_token(app, me, Bucket::Uploads).await?;
    let now = app.now();
    let direct = conv
        .direct_members()
        .is_some_and(|(a, b)| &a == me || &b == me);
    if !direct {
        require_member(app, &conv, me).await?;
    }
    let id = AttachmentId::random();
    let form = spec.form(
        &conv,
        me,
        &id,
        &frame.client_msg_id,
        now + limits.upload_ttl,
    );
    let post = app.objects.upload_form(&form, now).await?;
    tracing::info!(conversation = %conv, attachment = %id, size = spec.size, content_type = spec.content_type, "upload form signed");
    req.reply(
        app,
        &ServerFrame::Upload {
            conversation: conv,
            attachment: id,
            url: post.url,
            fields: post.fields,
            expires_at: post.expires_at,
        },
    )
    .await;
    Ok(())
}
