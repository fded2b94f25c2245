//! Adapter layer: block records, in the `memberships` table under the blocker's partition (pk
//! `user` = the blocker, sk `conv` = `#B#<blocked>`), and the [`Blocks`] port on them.
//!
//! Conversation ids start with a letter, a digit or one of `._@|+-:` (all above `#`), and user
//! ids cannot contain `#`: a block record's sort key sorts before every membership of its
//! partition and is never a conversation id, so a user's memberships are the Query `conv >= +`
//! and their blocks the Query `begins_with(conv, #B#)`. `send` and group changes read block
//! records in their first BatchGetItem (`reads.rs`), by key.

use super::codec::{self, from_item, s, to_item};
use super::memberships::{MembershipItem, MembershipKey};
use super::{DynamoStore, Item, USER, applied, backend};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnConsumedCapacity;
use chrono::{DateTime, Utc};
use messenger::domain::{ConversationId, Membership, UserId};
use messenger::ports::{BlockState, BlockedUser, Blocks, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// Sort-key prefix of a block record.
pub(super) const BLOCK: &str = "#B#";
/// The lowest first character of a conversation id: memberships are the sort keys from here.
pub(super) const FIRST_CONV: &str = "+";

/// `blocker` blocked `blocked` at `blocked_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct BlockItem {
    /// The blocker (the table's partition key).
    user: UserId,
    /// `#B#<blocked>`.
    conv: String,
    blocked: UserId,
    #[serde(with = "codec::instant")]
    blocked_at: DateTime<Utc>,
}

/// The key of the record "`blocker` blocked `blocked`".
#[derive(Serialize)]
pub(super) struct BlockKey<'a> {
    user: &'a UserId,
    conv: String,
}

impl<'a> BlockKey<'a> {
    pub(super) fn of(blocker: &'a UserId, blocked: &UserId) -> Self {
        Self {
            user: blocker,
            conv: format!("{BLOCK}{blocked}"),
        }
    }

    pub(super) fn item(&self) -> Result<Item, StoreError> {
        to_item(self)
    }
}

/// The (blocker, blocked) pair of a block record; `None` for any other item.
pub(super) fn pair_of(item: &Item) -> Option<(UserId, UserId)> {
    let blocker = item.get(USER)?.as_s().ok()?;
    let blocked = item
        .get(super::memberships::CONV)?
        .as_s()
        .ok()?
        .strip_prefix(BLOCK)?;
    Some((UserId::new(blocker).ok()?, UserId::new(blocked).ok()?))
}

#[async_trait]
impl Blocks for DynamoStore {
    /// A PutItem under `attribute_not_exists`: blocking twice keeps the first instant.
    async fn block(
        &self,
        blocker: &UserId,
        blocked: &UserId,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let item = to_item(&BlockItem {
            user: blocker.clone(),
            conv: format!("{BLOCK}{blocked}"),
            blocked: blocked.clone(),
            blocked_at: at,
        })?;
        applied(
            self.client
                .put_item()
                .table_name(&self.tables.memberships)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#u)")
                .expression_attribute_names("#u", USER)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await,
        )
    }

    /// A DeleteItem under `attribute_exists`.
    async fn unblock(&self, blocker: &UserId, blocked: &UserId) -> Result<bool, StoreError> {
        applied(
            self.client
                .delete_item()
                .table_name(&self.tables.memberships)
                .set_key(Some(BlockKey::of(blocker, blocked).item()?))
                .condition_expression("attribute_exists(#u)")
                .expression_attribute_names("#u", USER)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await,
        )
    }

    /// One Query of the blocker's block records (`limit + 1` of them, to know whether there
    /// are more), strongly consistent.
    async fn blocked(
        &self,
        blocker: &UserId,
        after: Option<&UserId>,
        limit: usize,
    ) -> Result<(Vec<BlockedUser>, bool), StoreError> {
        let start = after.map(|a| BlockKey::of(blocker, a).item()).transpose()?;
        let out = self
            .client
            .query()
            .table_name(&self.tables.memberships)
            .key_condition_expression("#u = :u AND begins_with(#c, :b)")
            .expression_attribute_names("#u", USER)
            .expression_attribute_names("#c", super::memberships::CONV)
            .expression_attribute_values(":u", s(blocker.as_str()))
            .expression_attribute_values(":b", s(BLOCK))
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(backend)?;
        let mut page = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| {
                from_item::<BlockItem>(item).map(|b| BlockedUser {
                    user: b.blocked,
                    at: b.blocked_at,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let more = page.len() > limit;
        page.truncate(limit);
        Ok((page, more))
    }

    /// One BatchGetItem of three keys, strongly consistent.
    async fn membership_and_blocks(
        &self,
        conv: &ConversationId,
        user: &UserId,
        other: &UserId,
    ) -> Result<(Option<Membership>, BlockState), StoreError> {
        let keys = vec![
            to_item(&MembershipKey { user, conv })?,
            BlockKey::of(user, other).item()?,
            BlockKey::of(other, user).item()?,
        ];
        let mut membership = None;
        let mut blocks = BlockState::default();
        for item in self.batch_get(&self.tables.memberships, keys, true).await? {
            match pair_of(&item) {
                Some((blocker, _)) if &blocker == user => blocks.by_me = true,
                Some(_) => blocks.by_them = true,
                None => {
                    membership = Some(Membership::from(from_item::<MembershipItem>(item)?));
                }
            }
        }
        Ok((membership, blocks))
    }

    /// One BatchGetItem (per 100 pairs), strongly consistent.
    async fn standing(
        &self,
        pairs: &[(UserId, UserId)],
    ) -> Result<HashSet<(UserId, UserId)>, StoreError> {
        let distinct: HashSet<&(UserId, UserId)> = pairs.iter().collect();
        if distinct.is_empty() {
            return Ok(HashSet::new());
        }
        let keys = distinct
            .into_iter()
            .map(|(a, b)| BlockKey::of(a, b).item())
            .collect::<Result<Vec<_>, _>>()?;
        let items = self.batch_get(&self.tables.memberships, keys, true).await?;
        Ok(items.iter().filter_map(pair_of).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_record_round_trips_and_sorts_before_every_conversation() {
        let (a, b) = (UserId::new("alice").unwrap(), UserId::new("bob").unwrap());
        let item = BlockItem {
            user: a.clone(),
            conv: format!("{BLOCK}{b}"),
            blocked: b.clone(),
            blocked_at: codec::tests::t0(),
        };
        let stored = to_item(&item).unwrap();
        assert_eq!(pair_of(&stored), Some((a.clone(), b.clone())));
        assert_eq!(from_item::<BlockItem>(stored).unwrap(), item);
        assert_eq!(
            to_item(&BlockKey::of(&a, &b)).unwrap().len(),
            2,
            "a key is the table's two key attributes"
        );
        // Every character a conversation id may start with sorts at or after FIRST_CONV, and
        // the block prefix before it.
        for c in "._@|+-:0aA".chars() {
            assert!(c.to_string().as_str() >= FIRST_CONV, "{c}");
        }
        assert!(BLOCK < FIRST_CONV);
    }
}
