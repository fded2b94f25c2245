//! Fuzzing layer: the seeded PRNG and the mutators — structure-aware (on a frame's JSON),
//! byte-level (on its text), and random bytes.

use serde_json::{Map, Number, Value, json};

/// SplitMix64: small, fast, and the same sequence for the same seed on every machine.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `percent` / 100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Strings that trip parsers and validators: empty, long, id edge cases, separators, unicode,
/// control characters, JSON-looking text.
fn nasty_string(rng: &mut Rng) -> String {
    match rng.below(14) {
        0 => String::new(),
        1 => "x".repeat(128),
        2 => "x".repeat(129),
        3 => "y".repeat(rng.below(40_000)),
        4 => "dm:alice:alice".into(),
        5 => "dm:bob:alice".into(),
        6 => "g:".to_owned() + &"f".repeat(rng.below(30)),
        7 => "a#b".into(),
        8 => "\u{0}\u{1}\u{1f}\n\t".into(),
        9 => "é🙂\u{202e}\u{feff}".into(),
        10 => "{\"action\":\"send\"}".into(),
        11 => "alice".into(),
        12 => format!("c-{}", rng.next_u64()),
        _ => (0..rng.below(20))
            .map(|_| char::from_u32(rng.below(0x3000) as u32).unwrap_or('?'))
            .collect(),
    }
}

/// Any JSON value, shallow (or deep, now and then).
fn random_value(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth > 3 { 8 } else { 11 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.percent(50)),
        2 => json!(rng.pick(&[0i64, 1, -1, 2, 7, 100, 101, i64::MAX, i64::MIN])),
        3 => json!(rng.pick(&[u64::MAX, 1u64 << 53, (1u64 << 53) + 1, 4_294_967_296])),
        4 => Number::from_f64(*rng.pick(&[0.5, -0.0, 1e300, 3.0, -7.25]))
            .map_or(Value::Null, Value::Number),
        5..=7 => Value::String(nasty_string(rng)),
        8 => Value::Array(
            (0..rng.below(4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        9 => {
            let mut m = Map::new();
            for _ in 0..rng.below(4) {
                m.insert(nasty_string(rng), random_value(rng, depth + 1));
            }
            Value::Object(m)
        }
        _ => {
            // Deep nesting (serde_json refuses past 128 levels).
            let mut v = json!(1);
            for _ in 0..rng.below(200) {
                v = json!([v]);
            }
            v
        }
    }
}

/// A value somewhere inside `v` (the root or a member, recursively), to mutate in place.
fn somewhere<'a>(rng: &mut Rng, v: &'a mut Value) -> &'a mut Value {
    let descend = match v {
        Value::Object(m) if !m.is_empty() && rng.percent(70) => {
            let k = m.keys().nth(rng.below(m.len())).cloned().expect("a key");
            Some(k)
        }
        Value::Array(a) if !a.is_empty() && rng.percent(70) => Some(rng.below(a.len()).to_string()),
        _ => None,
    };
    match (descend, v) {
        (Some(k), Value::Object(m)) => somewhere(rng, m.get_mut(&k).expect("the key")),
        (Some(i), Value::Array(a)) => somewhere(rng, &mut a[i.parse::<usize>().expect("an index")]),
        (_, v) => v,
    }
}

/// Every action's name (from the route table), and names that are almost actions.
static ACTIONS: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    let mut names: Vec<&'static str> = messenger::routes::Action::ALL
        .iter()
        .map(|a| a.name())
        .collect();
    names.extend(["Send", "send ", "$default", "$connect", "$disconnect", ""]);
    names
});

/// A structure-aware mutation of a valid frame: one to three changes to its JSON.
pub fn mutate_json(rng: &mut Rng, mut frame: Value) -> Value {
    for _ in 0..1 + rng.below(3) {
        match rng.below(9) {
            // Drop a member.
            0 => {
                if let Value::Object(m) = somewhere(rng, &mut frame)
                    && !m.is_empty()
                {
                    let k = m.keys().nth(rng.below(m.len())).cloned().expect("a key");
                    m.remove(&k);
                }
            }
            // Replace a value with one of any type.
            1..=3 => *somewhere(rng, &mut frame) = random_value(rng, 0),
            // Add a member, or a known field where it does not belong.
            4 => {
                if let Value::Object(m) = somewhere(rng, &mut frame) {
                    let key = rng
                        .pick(&[
                            "id",
                            "client_msg_id",
                            "to",
                            "conversation",
                            "body",
                            "seq",
                            "kind",
                            "since",
                            "limit",
                            "before",
                            "users",
                            "members",
                            "name",
                            "from",
                            "platform",
                            "token",
                            "preview",
                            "after",
                            "action",
                        ])
                        .to_string();
                    m.insert(key, random_value(rng, 0));
                }
            }
            // Another action on the same fields.
            5 => {
                if let Value::Object(m) = &mut frame {
                    m.insert("action".into(), json!(rng.pick(&ACTIONS)));
                }
            }
            // The id: any type, long, absent.
            6 => {
                if let Value::Object(m) = &mut frame {
                    m.insert("id".into(), random_value(rng, 0));
                }
            }
            // Numbers at the edges.
            7 => {
                let v = somewhere(rng, &mut frame);
                if v.is_number() {
                    *v = json!(rng.pick(&[0i64, -1, 1, i64::MAX, 101, 257]));
                }
            }
            // The whole frame another JSON type.
            _ => {
                if rng.percent(10) {
                    frame = random_value(rng, 0);
                }
            }
        }
    }
    frame
}

/// A byte-level mutation of a frame's text: flips, insertions, deletions, truncation,
/// duplicated keys, splices.
pub fn mutate_bytes(rng: &mut Rng, text: &str) -> Vec<u8> {
    let mut b = text.as_bytes().to_vec();
    for _ in 0..1 + rng.below(4) {
        if b.is_empty() {
            b.push(b'{');
        }
        let at = rng.below(b.len());
        match rng.below(7) {
            0 => b[at] ^= 1 << rng.below(8),
            1 => b.insert(at, rng.next_u64() as u8),
            2 => {
                b.remove(at);
            }
            3 => b.truncate(at),
            4 => b.insert(at, *rng.pick(b"{}[]\",:\\0-9ex ")),
            5 => {
                // A duplicated member: `{"action":"send",` → `{"action":"ack","action":"send",`.
                if let Some(p) = text.find(',') {
                    let head = &text[..=p];
                    let mut d = head.as_bytes().to_vec();
                    d.extend_from_slice(&text.as_bytes()[1..]);
                    b = d;
                }
            }
            _ => {
                let cut = rng.below(b.len());
                let tail = b[cut..].to_vec();
                b.extend_from_slice(&tail);
            }
        }
    }
    b
}

/// Random bytes: printable or not, short or up to 40 KB.
pub fn random_bytes(rng: &mut Rng) -> Vec<u8> {
    let len = if rng.percent(95) {
        rng.below(200)
    } else {
        rng.below(40_000)
    };
    let printable = rng.percent(60);
    (0..len)
        .map(|_| {
            let x = rng.next_u64() as u8;
            if printable { 0x20 + x % 0x5f } else { x }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_mutates_the_same_way() {
        let frame = json!({"action":"send","to":"bob","client_msg_id":"c","body":"x","id":"1"});
        let run = |seed| {
            let mut rng = Rng::new(seed);
            (0..50)
                .map(|_| mutate_json(&mut rng, frame.clone()).to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(9), run(9));
        assert_ne!(run(9), run(10));
    }
}
