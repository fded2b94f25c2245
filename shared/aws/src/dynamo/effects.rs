//! Adapter layer: an append's [`Effects`] (membership changes) as actions of its transaction,
//! so a change and the message or event that records it are stored together or not at all.
//!
//! - a 1:1 conversation's first message: each member's item, created unless it exists
//!   (`if_not_exists` on every attribute, so an existing member keeps their pointers), with
//!   its message-request standing;
//! - a reply to a message request: the standing of both members back to accepted;
//! - a group change: the roster `R#<conv>` (one Update whose conditions are the change's: the
//!   caller's rights, who must or must not be a member, the group's size), the members' items,
//!   their group counts on their `presence` items (`groups`, with the per-user limit as the
//!   condition), the metadata `G#<conv>` (created, or renamed).
//!
//! Each action comes with what its failed condition means ([`GroupRefusal`]), read back from the
//! transaction's cancellation reasons by `append`.

use super::codec::{instant_value, n, s, to_item, value};
use super::memberships::{
    DELIVERED, FROM_SEQ, GroupItem, JOINED_AT, MEMBERS, MembershipItem, MembershipKey, NAME, READ,
    REQUEST, ROLE, RosterItem, group_key, roster_entry, roster_key,
};
use super::presence::GROUPS;
use super::{DynamoStore, USER, backend};
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem, Update,
};
use messenger::domain::{ConversationId, Member, NewMessage, RequestState, Role, Seq, UserId};
use messenger::ports::{Effects, GroupChange, GroupRefusal, StoreError};
use std::collections::HashMap;

/// A transaction action, and what it means when its condition fails (`None`: it has none).
pub(super) type Action = (TransactWriteItem, Option<GroupRefusal>);

/// Expression attribute names and values, numbered as they are added.
#[derive(Default)]
struct Expr {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
    users: HashMap<UserId, String>,
}

impl Expr {
    fn name(&mut self, placeholder: &str, name: &str) -> String {
        self.names.insert(placeholder.to_owned(), name.to_owned());
        placeholder.to_owned()
    }

    /// The placeholder of a user id (as a map key of the roster).
    fn user(&mut self, u: &UserId) -> String {
        let next = self.users.len();
        let p = self
            .users
            .entry(u.clone())
            .or_insert_with(|| format!("#u{next}"))
            .clone();
        self.names.insert(p.clone(), u.to_string());
        p
    }

    fn value(&mut self, v: AttributeValue) -> String {
        let p = format!(":v{}", self.values.len());
        self.values.insert(p.clone(), v);
        p
    }
}

fn role_value(role: Role) -> Result<AttributeValue, StoreError> {
    value(&role)
}

impl DynamoStore {
    /// The actions of `effects` for `msg` stored as `seq`, with `chats` chat messages in the log
    /// up to it (new group members have nothing unread before it).
    pub(super) fn effect_actions(
        &self,
        msg: &NewMessage,
        effects: &Effects,
        seq: Seq,
        chats: u64,
    ) -> Result<Vec<Action>, StoreError> {
        let conv = &msg.conversation;
        let mut actions = Vec::new();
        let mut direct = effects.direct.clone();
        direct.dedup_by(|a, b| a.0 == b.0);
        for (u, request) in &direct {
            actions.push((self.direct_membership(conv, u, *request, msg)?, None));
        }
        for u in &effects.accept {
            actions.push((self.accept_request(conv, u)?, None));
        }
        if let Some(change) = &effects.group {
            self.group_actions(conv, change, msg, (seq, chats), &mut actions)?;
        }
        Ok(actions)
    }

    /// A member's request standing back to accepted (`REMOVE request`); they must be a member.
    fn accept_request(
        &self,
        conv: &ConversationId,
        u: &UserId,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.tables.memberships)
            .set_key(Some(to_item(&MembershipKey { user: u, conv })?))
            .update_expression("REMOVE #rq")
            .condition_expression("attribute_exists(#u)")
            .expression_attribute_names("#rq", REQUEST)
            .expression_attribute_names("#u", USER)
            .build()
            .map_err(backend)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// A 1:1 member's item, created with pointers at 0 from seq 1 and this request standing
    /// unless it exists.
    fn direct_membership(
        &self,
        conv: &ConversationId,
        u: &UserId,
        request: RequestState,
        msg: &NewMessage,
    ) -> Result<TransactWriteItem, StoreError> {
        let keep = |a: &str, v: &str| format!("{a} = if_not_exists({a}, {v})");
        // An accepted standing is stored as no attribute. An existing member keeps theirs
        // (it is absent when accepted, so only a new item gets one: every item of a 1:1 is made
        // by its first message, both together).
        let mut sets = vec![
            keep("#role", ":member"),
            keep("#from", ":one"),
            keep("#joined", ":at"),
            keep("#d", ":zero"),
            keep("#r", ":zero"),
        ];
        let mut update = Update::builder();
        if request != RequestState::Accepted {
            sets.push(keep("#rq", ":rq"));
            update = update
                .expression_attribute_names("#rq", REQUEST)
                .expression_attribute_values(":rq", value(&request)?);
        }
        let update = update
            .table_name(&self.tables.memberships)
            .set_key(Some(to_item(&MembershipKey { user: u, conv })?))
            .update_expression(format!("SET {}", sets.join(", ")))
            .expression_attribute_names("#role", ROLE)
            .expression_attribute_names("#from", FROM_SEQ)
            .expression_attribute_names("#joined", JOINED_AT)
            .expression_attribute_names("#d", DELIVERED)
            .expression_attribute_names("#r", READ)
            .expression_attribute_values(":member", role_value(Role::Member)?)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":at", instant_value(msg.sent_at))
            .expression_attribute_values(":zero", n(0))
            .build()
            .map_err(backend)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    fn group_actions(
        &self,
        conv: &ConversationId,
        change: &GroupChange,
        msg: &NewMessage,
        (seq, chats): (Seq, u64),
        actions: &mut Vec<Action>,
    ) -> Result<(), StoreError> {
        let t = &self.tables;
        let joined: Vec<Member> = change
            .join
            .iter()
            .map(|(u, role)| Member {
                user: u.clone(),
                role: *role,
                joined_at: msg.sent_at,
                from_seq: seq,
            })
            .collect();
        if let Some(info) = &change.create {
            let absent = "attribute_not_exists(pk)";
            for item in [
                to_item(&GroupItem::from(info))?,
                to_item(&RosterItem::new(conv, &joined))?,
            ] {
                let put = Put::builder()
                    .table_name(&t.messages)
                    .set_item(Some(item))
                    .condition_expression(absent)
                    .build()
                    .map_err(backend)?;
                let action = TransactWriteItem::builder().put(put).build();
                actions.push((action, Some(GroupRefusal::GroupExists)));
            }
        } else {
            actions.push((
                self.roster_action(conv, change, &joined)?,
                Some(GroupRefusal::GroupChanged),
            ));
        }
        if let Some(name) = &change.rename {
            let update = Update::builder()
                .table_name(&t.messages)
                .set_key(Some(group_key(conv).item()?))
                .update_expression("SET #name = :name")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_names("#name", NAME)
                .expression_attribute_values(":name", s(name.as_str()))
                .build()
                .map_err(backend)?;
            let action = TransactWriteItem::builder().update(update).build();
            actions.push((action, Some(GroupRefusal::GroupChanged)));
        }
        for m in &joined {
            let membership = change.joining(conv, &m.user, m.role, (seq, chats), m.joined_at);
            let put = Put::builder()
                .table_name(&t.memberships)
                .set_item(Some(to_item(&MembershipItem::from(&membership))?))
                .build()
                .map_err(backend)?;
            actions.push((TransactWriteItem::builder().put(put).build(), None));
            actions.push((
                self.count(&m.user, 1, change.max_groups_per_user)?,
                Some(GroupRefusal::TooManyGroups(m.user.clone())),
            ));
        }
        for u in &change.leave {
            let delete = Delete::builder()
                .table_name(&t.memberships)
                .set_key(Some(to_item(&MembershipKey { user: u, conv })?))
                .build()
                .map_err(backend)?;
            actions.push((TransactWriteItem::builder().delete(delete).build(), None));
            actions.push((self.count(u, -1, 0)?, None));
        }
        for u in &change.promote {
            let update = Update::builder()
                .table_name(&t.memberships)
                .set_key(Some(to_item(&MembershipKey { user: u, conv })?))
                .update_expression("SET #role = :admin")
                .expression_attribute_names("#role", ROLE)
                .expression_attribute_values(":admin", role_value(Role::Admin)?)
                .build()
                .map_err(backend)?;
            actions.push((TransactWriteItem::builder().update(update).build(), None));
        }
        Ok(())
    }

    /// The roster's part of a change: an Update of `R#<conv>` (or a ConditionCheck when only
    /// its conditions matter) whose condition is everything the change relies on.
    fn roster_action(
        &self,
        conv: &ConversationId,
        change: &GroupChange,
        joined: &[Member],
    ) -> Result<TransactWriteItem, StoreError> {
        let mut e = Expr::default();
        let m = e.name("#m", MEMBERS);
        let role = "#role";
        let mut conditions = vec![format!("attribute_exists({m})")];
        let (mut sets, mut removes) = (Vec::new(), Vec::new());
        for (u, required) in &change.require {
            let p = e.user(u);
            conditions.push(match required {
                Some(r) => {
                    let v = e.value(role_value(*r)?);
                    format!("{m}.{p}.{role} = {v}")
                }
                None => format!("attribute_exists({m}.{p})"),
            });
        }
        for member in joined {
            let p = e.user(&member.user);
            conditions.push(format!("attribute_not_exists({m}.{p})"));
            let v = e.value(roster_entry(member)?);
            sets.push(format!("{m}.{p} = {v}"));
        }
        for u in &change.leave {
            let p = e.user(u);
            conditions.push(format!("attribute_exists({m}.{p})"));
            removes.push(format!("{m}.{p}"));
        }
        for u in &change.promote {
            let p = e.user(u);
            conditions.push(format!("attribute_exists({m}.{p})"));
            let v = e.value(role_value(Role::Admin)?);
            sets.push(format!("{m}.{p}.{role} = {v}"));
        }
        if conditions.iter().chain(&sets).any(|c| c.contains(role)) {
            e.name(role, ROLE);
        }
        if !joined.is_empty() && change.max_members > 0 {
            // Counted before the change: at most max - joining + leaving members now.
            let room = change.max_members as i64 - joined.len() as i64 + change.leave.len() as i64;
            let v = e.value(AttributeValue::N(room.to_string()));
            conditions.push(format!("size({m}) <= {v}"));
        }
        let key = roster_key(conv).item()?;
        let condition = conditions.join(" AND ");
        let table = &self.tables.messages;
        if sets.is_empty() && removes.is_empty() {
            let check = ConditionCheck::builder()
                .table_name(table)
                .set_key(Some(key))
                .condition_expression(condition)
                .set_expression_attribute_names(Some(e.names))
                .set_expression_attribute_values((!e.values.is_empty()).then_some(e.values))
                .build()
                .map_err(backend)?;
            return Ok(TransactWriteItem::builder().condition_check(check).build());
        }
        let mut expression = String::new();
        if !sets.is_empty() {
            expression.push_str(&format!("SET {}", sets.join(", ")));
        }
        if !removes.is_empty() {
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        let update = Update::builder()
            .table_name(table)
            .set_key(Some(key))
            .update_expression(expression.trim())
            .condition_expression(condition)
            .set_expression_attribute_names(Some(e.names))
            .set_expression_attribute_values((!e.values.is_empty()).then_some(e.values))
            .build()
            .map_err(backend)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// `ADD groups <by>` on a user's presence item; with `max > 0`, only while they are in
    /// fewer than `max` groups.
    fn count(&self, u: &UserId, by: i64, max: usize) -> Result<TransactWriteItem, StoreError> {
        let mut update = Update::builder()
            .table_name(&self.tables.presence)
            .key(USER, s(u.as_str()))
            .update_expression("ADD #g :by")
            .expression_attribute_names("#g", GROUPS)
            .expression_attribute_values(":by", AttributeValue::N(by.to_string()));
        if max > 0 {
            update = update
                .condition_expression("attribute_not_exists(#g) OR #g < :max")
                .expression_attribute_values(":max", n(max as u64));
        }
        Ok(TransactWriteItem::builder()
            .update(update.build().map_err(backend)?)
            .build())
    }
}
