//! Workload layer: which user each connection is, whom it writes to, and who must receive it.
//!
//! The rest of the generator only asks a [`Plan`] three questions (the user of a connection,
//! the target of its sends, the connections that must receive them), so a new topology only
//! changes this file and, if it needs one, the set-up step in [`crate::run`].
//!
//! Two topologies: [`Topology::Pairs`] (1:1 chats) and [`Topology::Groups`] (groups of G
//! members, each writing to the whole group). A group's conversation id is the server's, so
//! group plans start with no targets: the set-up phase ([`crate::run`]) creates each group with
//! a `create_group` frame from its first member (and `add_members` frames past 40 members) and
//! fills in [`Plan::targets`] and [`Plan::reserved_seqs`] (the set-up events take the first
//! seqs). Loss, duplication and seq
//! checks work per (sender, recipient) and per conversation, so they are the same for both.

use crate::BenchError;
use serde::Serialize;

/// How connections are grouped into conversations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Topology {
    /// Connections `2k` and `2k+1` are two users of one 1:1 conversation; each writes to the
    /// other, so every message has exactly one recipient connection.
    Pairs,
    /// Connections `kG … kG+G-1` are the members of group `k` (created by the first of them);
    /// each writes to the group, so every message has `G - 1` recipient connections.
    Groups { size: usize },
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
    /// Seqs of each conversation taken before the load (the `group_created` event), so the
    /// gap check counts from the first seq the generator's sends can get.
    pub reserved_seqs: std::collections::HashMap<String, u64>,
}

impl Plan {
    /// A plan for `connections` connections whose user ids start with `prefix`.
    pub fn new(topology: Topology, connections: usize, prefix: &str) -> Result<Self, BenchError> {
        match topology {
            Topology::Pairs => Self::pairs(connections, prefix),
            Topology::Groups { size } => Self::groups(size, connections, prefix),
        }
    }

    fn groups(size: usize, connections: usize, prefix: &str) -> Result<Self, BenchError> {
        // The server's default limit is 256 members, creator included.
        if !(2..=256).contains(&size) || connections == 0 || !connections.is_multiple_of(size) {
            return Err(BenchError::Config(format!(
                "groups of {size} need a group size of 2 to 256 and a multiple of it as the \
                 number of connections, got {connections}"
            )));
        }
        let users: Vec<String> = (0..connections).map(|i| format!("{prefix}-{i}")).collect();
        let others = |i: usize| {
            let first = i - i % size;
            (first..first + size)
                .filter(|&j| j != i)
                .collect::<Vec<_>>()
        };
        Ok(Self {
            topology: Topology::Groups { size },
            // Known once the set-up phase has created the groups.
            targets: Vec::new(),
            recipients: (0..connections).map(others).collect(),
            senders: (0..connections).map(others).collect(),
            reserved_seqs: Default::default(),
            users,
        })
    }

    /// The groups of a group plan: for each, its connections (the creator first).
    pub fn groups_of(&self) -> Vec<std::ops::Range<usize>> {
        match self.topology {
            Topology::Pairs => Vec::new(),
            Topology::Groups { size } => (0..self.len())
                .step_by(size)
                .map(|first| first..first + size)
                .collect(),
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
            reserved_seqs: Default::default(),
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
    fn group_members_write_to_every_other_member() {
        let p = Plan::new(Topology::Groups { size: 3 }, 6, "u").unwrap();
        assert_eq!(p.recipients[0], [1, 2]);
        assert_eq!(p.recipients[4], [3, 5]);
        assert_eq!(p.senders[5], [3, 4]);
        assert_eq!(p.groups_of(), [0..3, 3..6]);
        assert!(p.targets.is_empty(), "filled in by the set-up phase");
    }

    #[test]
    fn groups_refuse_a_partial_group() {
        assert!(Plan::new(Topology::Groups { size: 3 }, 7, "u").is_err());
        assert!(Plan::new(Topology::Groups { size: 1 }, 4, "u").is_err());
        assert!(Plan::new(Topology::Groups { size: 257 }, 257, "u").is_err());
    }

    #[test]
    fn pairs_refuse_an_odd_count() {
        assert!(Plan::new(Topology::Pairs, 3, "u").is_err());
        assert!(Plan::new(Topology::Pairs, 0, "u").is_err());
    }
}
