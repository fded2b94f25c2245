//! Domain layer: per-user rate limits. Token buckets, one per user and [`Bucket`], kept as one
//! instant each (GCRA, the "generic cell rate algorithm": a token bucket written as the time at
//! which the bucket will be full again), so a store updates them with one conditional write and
//! every adapter computes the same answer ([`Rate::decide`]).

use chrono::{DateTime, Utc};
use std::fmt;

/// Which of a user's buckets a request takes its token from (all of the user's devices share it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Bucket {
    /// `send`, and the log entries `edit`, `delete`, `react`.
    Send,
    /// `create_group`, `add_members`, `remove_members`, `leave_group`, `rename_group`, `mute`,
    /// `unmute`.
    Groups,
    /// `sync`, `history`, `conversations`, `receipts`: pulls.
    Reads,
    /// `presence`.
    Presence,
    /// `register_push`, `unregister_push`.
    Push,
    /// `upload`: files (signed upload forms).
    Uploads,
}

impl Bucket {
    /// Every bucket.
    pub const ALL: [Bucket; 6] = [
        Self::Send,
        Self::Groups,
        Self::Reads,
        Self::Presence,
        Self::Push,
        Self::Uploads,
    ];

    /// Its name in configuration (`MESSENGER_RATE_<NAME>`, `serve --rate-<name>`) and storage.
    pub fn name(self) -> &'static str {
        match self {
            Self::Send => "send",
            Self::Groups => "groups",
            Self::Reads => "reads",
            Self::Presence => "presence",
            Self::Push => "push",
            Self::Uploads => "uploads",
        }
    }
}

/// One bucket's rate: up to `burst` requests at once, refilled at `per_minute` requests a minute.
/// A `burst` of 0 turns the limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub burst: u32,
    pub per_minute: u32,
}

/// What one request's token costs the bucket: allowed (with the bucket's new full-again
/// instant), or refused until `retry_after` has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed { until: DateTime<Utc> },
    Limited { retry_after: chrono::Duration },
}

impl Rate {
    /// No limit.
    pub const OFF: Rate = Rate {
        burst: 0,
        per_minute: 0,
    };

    pub fn is_off(self) -> bool {
        self.burst == 0 || self.per_minute == 0
    }

    /// The time one token takes to come back.
    pub fn interval(self) -> chrono::Duration {
        chrono::Duration::microseconds(60_000_000 / i64::from(self.per_minute.max(1)))
    }

    /// How far ahead of now the full-again instant may be while a request is still allowed:
    /// `burst - 1` intervals.
    pub fn tolerance(self) -> chrono::Duration {
        self.interval() * (self.burst.max(1) as i32 - 1)
    }

    /// GCRA: with the bucket full again at `full_at` (`None`: never used, or long idle), a
    /// request at `now` is allowed when `full_at <= now + tolerance`, and moves `full_at` to
    /// `max(full_at, now) + interval`. Refused, it changes nothing and may retry once
    /// `full_at - tolerance` has come.
    pub fn decide(self, full_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Decision {
        let base = full_at.map_or(now, |t| t.max(now));
        let limit = now + self.tolerance();
        match full_at {
            Some(t) if t > limit => Decision::Limited {
                retry_after: t - limit,
            },
            _ => Decision::Allowed {
                until: base + self.interval(),
            },
        }
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_off() {
            f.write_str("off")
        } else {
            write!(f, "{},{}", self.burst, self.per_minute)
        }
    }
}

impl std::str::FromStr for Rate {
    type Err = String;

    /// `BURST,PER_MINUTE` (e.g. `60,300`), or `0`/`off` for no limit.
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s == "0" || s.eq_ignore_ascii_case("off") {
            return Ok(Rate::OFF);
        }
        let (burst, per_minute) = s
            .split_once(',')
            .ok_or_else(|| format!("{s:?}: expected BURST,PER_MINUTE (e.g. 60,300) or 0"))?;
        let number = |v: &str| {
            v.trim()
                .parse::<u32>()
                .map_err(|e| format!("{s:?}: {v:?} is not a count: {e}"))
        };
        let rate = Rate {
            burst: number(burst)?,
            per_minute: number(per_minute)?,
        };
        if rate.per_minute > 60_000_000 {
            return Err(format!("{s:?}: at most 60000000 a minute"));
        }
        Ok(rate)
    }
}

/// The rate of every bucket. Defaults: a person chatting never meets them; a script does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub send: Rate,
    pub groups: Rate,
    pub reads: Rate,
    pub presence: Rate,
    pub push: Rate,
    pub uploads: Rate,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            // An outbox flushing after a reconnect sends its backlog at once; then 5 a second.
            send: Rate {
                burst: 60,
                per_minute: 300,
            },
            groups: Rate {
                burst: 20,
                per_minute: 20,
            },
            // A reconnect pages through sync (100 messages a page) and opens chats.
            reads: Rate {
                burst: 120,
                per_minute: 240,
            },
            presence: Rate {
                burst: 30,
                per_minute: 60,
            },
            push: Rate {
                burst: 10,
                per_minute: 6,
            },
            // An album of 30 photos at once, then one every 2 seconds.
            uploads: Rate {
                burst: 30,
                per_minute: 30,
            },
        }
    }
}

impl RateLimits {
    /// Every bucket off (benchmarks, which measure throughput, not limits).
    pub const OFF: RateLimits = RateLimits {
        send: Rate::OFF,
        groups: Rate::OFF,
        reads: Rate::OFF,
        presence: Rate::OFF,
        push: Rate::OFF,
        uploads: Rate::OFF,
    };

    pub fn of(&self, bucket: Bucket) -> Rate {
        match bucket {
            Bucket::Send => self.send,
            Bucket::Groups => self.groups,
            Bucket::Reads => self.reads,
            Bucket::Presence => self.presence,
            Bucket::Push => self.push,
            Bucket::Uploads => self.uploads,
        }
    }

    pub fn set(&mut self, bucket: Bucket, rate: Rate) {
        match bucket {
            Bucket::Send => self.send = rate,
            Bucket::Groups => self.groups = rate,
            Bucket::Reads => self.reads = rate,
            Bucket::Presence => self.presence = rate,
            Bucket::Push => self.push = rate,
            Bucket::Uploads => self.uploads = rate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_800_000_000_000 + ms).unwrap()
    }

    #[test]
    fn a_burst_is_allowed_then_one_per_interval() {
        // 3 at once, then one every second.
        let rate = Rate {
            burst: 3,
            per_minute: 60,
        };
        let mut full_at = None;
        for _ in 0..3 {
            match rate.decide(full_at, t(0)) {
                Decision::Allowed { until } => full_at = Some(until),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(full_at, Some(t(3000)));
        assert_eq!(
            rate.decide(full_at, t(0)),
            Decision::Limited {
                retry_after: chrono::Duration::seconds(1)
            }
        );
        // After the retry-after, exactly one more.
        let Decision::Allowed { until } = rate.decide(full_at, t(1000)) else {
            panic!("allowed after the retry-after")
        };
        assert!(matches!(
            rate.decide(Some(until), t(1000)),
            Decision::Limited { .. }
        ));
        // A long idle bucket is full again: no credit piles up past the burst.
        let mut full_at = Some(t(0));
        let mut allowed = 0;
        while let Decision::Allowed { until } = rate.decide(full_at, t(3_600_000)) {
            full_at = Some(until);
            allowed += 1;
        }
        assert_eq!(allowed, 3);
    }

    #[test]
    fn rates_parse_and_print() {
        let r: Rate = "60,300".parse().unwrap();
        assert_eq!(
            r,
            Rate {
                burst: 60,
                per_minute: 300
            }
        );
        assert_eq!(r.to_string(), "60,300");
        assert_eq!(r.interval(), chrono::Duration::milliseconds(200));
        assert!("0".parse::<Rate>().unwrap().is_off());
        assert!("off".parse::<Rate>().unwrap().is_off());
        for bad in ["60", "a,b", "1,-1", ""] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }
}
