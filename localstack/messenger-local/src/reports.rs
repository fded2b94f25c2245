//! The operators' view of reports (`messenger-local reports`, `GET /_local/reports`): reports
//! are kept where no client action reads them, so this is how they are read.

use chrono::{DateTime, Utc};
use messenger::moderation::Report;
use messenger::ports::{Reports, StoreError};

/// The reports of the last `days` days (today included), oldest first: one query per day.
pub async fn recent(
    reports: &dyn Reports,
    days: u32,
    now: DateTime<Utc>,
) -> Result<Vec<Report>, StoreError> {
    let today = now.date_naive();
    let mut all = Vec::new();
    for back in (0..days).rev() {
        let day = today - chrono::Duration::days(i64::from(back));
        all.extend(reports.reports_of_day(day).await?);
    }
    Ok(all)
}

/// One line per report: id, time, reason, reporter, the message and its text.
pub fn line(r: &Report) -> String {
    let text = r.message.body.as_deref().unwrap_or("");
    let text: String = text.chars().take(80).collect();
    format!(
        "{}  {}  {:?}  {} reported {}#{} by {}: {}",
        r.id,
        messenger::protocol::format_time(&r.reported_at),
        r.reason,
        r.reporter,
        r.conversation,
        r.seq,
        r.message.from,
        text.replace('\n', " ")
    )
}
