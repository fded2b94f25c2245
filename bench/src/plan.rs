//! Workload layer: which user each connection is, whom it writes to, and who must receive it.
//!
//! The rest of the generator only asks a [`Plan`] three questions (the user of a connection,
//! the target of its sends, the connections that must receive them), so a new topology only
//! changes this file and, if it needs one, the set-up step in [`crate::run`].
//!
//! **Extension point for group chats.** Group frames are still being designed, so only
//! [`Topology::Pairs`] exists. A group mode adds a variant (e.g. `Groups { size }`), builds its
//! users and `recipients` here (every other member's connection), and sends with
//! [`SendTarget::Conversation`]; the groups themselves are created by a set-up phase in
//! [`crate::run::run`] (marked there) before the load starts, once the create/add frames are
//! final. Loss, duplication and seq checks already work per (sender, recipient) and per
//! conversation, so they need no change.

use crate::BenchError;
use serde::Serialize;

/// How connections are grouped into conversations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Topology {
    /// Connections `2k` and `2k+1` are two users of one 1:1 conversation; each writes to the
    /// other, so every message has exactly one recipient connection.
    Pairs,
}

/// Where a connection's `send` frames go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendTarget {
    /// `"to": user`: the 1:1 conversation with that user.
    User(String),
    /// `"conversation": id`: any conversation the sender belongs to (groups).
    Conversation(String),
}

impl SendTarget {
    /// The frame field and its value.
    pub fn field(&self) -> (&'static str, &str) {
        match self {
            Self::User(u) => ("to", u),
            Self::Conversation(c) => ("conversation", c),
        }
    }
}

/// The fixed workload of a run: one user per connection.
#[derive(Debug, Clone)]
pub struct Plan {
    pub topology: Topology,
    /// The user id of each connection.
    pub users: Vec<String>,
    /// Where each connection sends.
    pub targets: Vec<SendTarget>,
    /// For each connection, the connections that must receive what it sends.
    pub recipients: Vec<Vec<usize>>,
    /// For each connection, the connections whose messages it expects (inverse of `recipients`).
    pub senders: Vec<Vec<usize>>,
}

impl Plan {
    /// A plan for `connections` connections whose user ids start with `prefix`.
    pub fn new(topology: Topology, connections: usize, prefix: &str) -> Result<Self, BenchError> {
        match topology {
            Topology::Pairs => Self::pairs(connections, prefix),
        }
    }

    fn pairs(connections: usize, prefix: &str) -> Result<Self, BenchError> {
        if connections < 2 || !connections.is_multiple_of(2) {
            return Err(BenchError::Config(format!(
                "pairs need an even number of connections (at least 2), got {connections}"
            )));
        }
        let users: Vec<String> = (0..connections).map(|i| format!("{prefix}-{i}")).collect();
        let peer = |i: usize| i ^ 1;
        Ok(Self {
            topology: Topology::Pairs,
            targets: (0..connections)
                .map(|i| SendTarget::User(users[peer(i)].clone()))
                .collect(),
            recipients: (0..connections).map(|i| vec![peer(i)]).collect(),
            senders: (0..connections).map(|i| vec![peer(i)]).collect(),
            users,
        })
    }

    /// How many connections there are.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether the plan has no connections (never true for a valid plan).
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_write_to_each_other() {
        let p = Plan::new(Topology::Pairs, 4, "u").unwrap();
        assert_eq!(p.users, ["u-0", "u-1", "u-2", "u-3"]);
        assert_eq!(p.targets[2], SendTarget::User("u-3".into()));
        assert_eq!(p.recipients[3], [2]);
        assert_eq!(p.senders[0], [1]);
    }

    #[test]
    fn pairs_refuse_an_odd_count() {
        assert!(Plan::new(Topology::Pairs, 3, "u").is_err());
        assert!(Plan::new(Topology::Pairs, 0, "u").is_err());
    }
}
