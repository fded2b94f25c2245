//! Adapter layer: reports, in the `messages` table under `X#<YYYYMMDD>` (the day the report was
//! made), sk the report id's 52-bit key: the [`Reports`] port. No client action reads this key
//! space (conversation and user ids cannot contain `#`, and every client read is keyed by one);
//! the operators' `messenger-local reports` does. The stream handler ignores these items (only
//! `M#` inserts are messages).

use super::codec::{self, from_item, n, s, to_item};
use super::{DynamoStore, Item, applied, messages};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnConsumedCapacity;
use chrono::{DateTime, NaiveDate, Utc};
use messenger::domain::{ConversationId, Seq, UserId};
use messenger::moderation::{Report, ReportId, ReportReason};
use messenger::ports::{Reports, StoreError};
use messenger::protocol::MessageView;
use serde::{Deserialize, Serialize};

/// Partition-key prefix of a day's reports.
const REPORTS: &str = "X#";

fn pk(day: NaiveDate) -> String {
    format!("{REPORTS}{}", day.format("%Y%m%d"))
}

/// One report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ReportItem {
    pk: String,
    sk: u64,
    id: ReportId,
    reporter: UserId,
    conversation: ConversationId,
    seq: Seq,
    reason: ReportReason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    details: Option<String>,
    #[serde(with = "codec::instant")]
    reported_at: DateTime<Utc>,
    /// The message as it was, as its JSON view.
    #[serde(with = "codec::json")]
    message: MessageView,
}

impl From<&Report> for ReportItem {
    fn from(r: &Report) -> Self {
        Self {
            pk: pk(r.id.day),
            sk: r.id.key,
            id: r.id.clone(),
            reporter: r.reporter.clone(),
            conversation: r.conversation.clone(),
            seq: r.seq,
            reason: r.reason,
            details: r.details.clone(),
            reported_at: r.reported_at,
            message: r.message.clone(),
        }
    }
}

impl From<ReportItem> for Report {
    fn from(i: ReportItem) -> Self {
        Self {
            id: i.id,
            reporter: i.reporter,
            conversation: i.conversation,
            seq: i.seq,
            reason: i.reason,
            details: i.details,
            reported_at: i.reported_at,
            message: i.message,
        }
    }
}

#[async_trait]
impl Reports for DynamoStore {
    /// A PutItem under `attribute_not_exists(pk)`.
    async fn put_report(&self, report: &Report) -> Result<bool, StoreError> {
        applied(
            self.client
                .put_item()
                .table_name(&self.tables.messages)
                .set_item(Some(to_item(&ReportItem::from(report))?))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", messages::PK)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await,
        )
    }

    /// One GetItem, strongly consistent.
    async fn report(&self, id: &ReportId) -> Result<Option<Report>, StoreError> {
        let key = Item::from([
            (messages::PK.to_owned(), s(pk(id.day))),
            (messages::SK.to_owned(), n(id.key)),
        ]);
        let item: Option<ReportItem> = self.get_item(&self.tables.messages, key).await?;
        Ok(item.map(Report::from))
    }

    /// One Query of the day's partition (per 1 MB), strongly consistent.
    async fn reports_of_day(&self, day: NaiveDate) -> Result<Vec<Report>, StoreError> {
        let items = self
            .query_all(|| {
                self.client
                    .query()
                    .table_name(&self.tables.messages)
                    .key_condition_expression("#pk = :pk")
                    .expression_attribute_names("#pk", messages::PK)
                    .expression_attribute_values(":pk", s(pk(day)))
                    .consistent_read(true)
            })
            .await?;
        let mut reports = items
            .into_iter()
            .map(|item| from_item::<ReportItem>(item).map(Report::from))
            .collect::<Result<Vec<_>, _>>()?;
        reports.sort_by(|a, b| (a.reported_at, &a.id).cmp(&(b.reported_at, &b.id)));
        Ok(reports)
    }
}
