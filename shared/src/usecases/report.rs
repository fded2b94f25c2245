//! Use case of the `report` route: a message to the operators.

use super::require_member;
use crate::moderation::{MAX_DETAILS_BYTES, Report, ReportId};
use crate::protocol::{MessageView, ReportFrame, ServerFrame};
use crate::request::Request;
use crate::{App, Error};

/// `report`: a member reports a message of someone else that they can see. The report — the
/// reporter, the message as it is now (a copy: later edits or deletion do not change it), the
/// reason, the details and the time — is stored where no client action reads it, then
/// published to the moderation topic. One report per reporter, message and day: a second is
/// answered with the first (`duplicate`) and publishes nothing. Nobody else is told.
///
/// Requests: the caller's token (groups bucket), the membership, the message, the conditional
/// put of the report; then one SNS Publish.
pub async fn report(app: &App, req: &Request, frame: ReportFrame) -> Result<(), Error> {
    let me = &req.caller.user;
    let (conv, seq) = (frame.conversation, frame.seq);
    if seq == 0 {
        return Err(Error::BadRequest("seq must be at least 1".into()));
    }
    let details = frame.details.filter(|d| !d.is_empty());
    if let Some(d) = &details
        && d.len() > MAX_DETAILS_BYTES
    {
        return Err(Error::TooLarge(format!(
            "details are {} bytes; the limit is {MAX_DETAILS_BYTES}",
            d.len()
        )));
    }
    let membership = require_member(app, &conv, me).await?;
    let now = app.now();
    let message = app
        .stores
        .messages
        .by_seqs(&conv, &[seq], now)
        .await?
        .into_iter()
        .next()
        .filter(|m| m.seq >= membership.from_seq)
        .ok_or_else(|| Error::NotFound(format!("no message {seq} you can see in {conv}")))?;
    if !message.is_chat() {
        return Err(Error::BadRequest(format!("{seq} is not a chat message")));
    }
    if message.deleted {
        return Err(Error::NotFound(format!("message {seq} was deleted")));
    }
    if &message.from == me {
        return Err(Error::BadRequest(
            "you cannot report your own message".into(),
        ));
    }
    let report = Report {
        id: ReportId::of(me, &conv, seq, now),
        reporter: me.clone(),
        conversation: conv.clone(),
        seq,
        reason: frame.reason,
        details,
        reported_at: now,
        message: MessageView::from(&message),
    };
    let stored = app.stores.reports.put_report(&report).await?;
    req.reply(
        app,
        &ServerFrame::Reported {
            report: report.id.clone(),
            conversation: conv,
            seq,
            duplicate: !stored,
        },
    )
    .await;
    if stored {
        // Stored and answered: the operators can list it even if the topic is unreachable.
        if let Err(e) = app.notifier.report(&report).await {
            tracing::error!(report = %report.id, error = ?e, "could not publish the report");
        } else {
            tracing::info!(report = %report.id, reason = ?report.reason, "message reported");
        }
    }
    Ok(())
}
