//! The POST policy of an upload form (S3's "browser-based upload" policy document): built here
//! for every object store, and checked here by the local ones as S3 checks it. Every field of
//! the form is pinned to its exact value, and `content-length-range` to the declared size.

use super::UploadForm;
use super::signed::Refusal;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The policy document of `form`, with the bucket (S3's forms name it; local ones have none)
/// and the signer's fields (`x-amz-algorithm`, `x-amz-credential`, `x-amz-date`, and a session
/// token when there is one).
pub fn document(form: &UploadForm, bucket: Option<&str>, signing: &[(String, String)]) -> String {
    let mut conditions = Vec::new();
    if let Some(bucket) = bucket {
        conditions.push(json!({ "bucket": bucket }));
    }
    conditions.push(json!({ "key": form.key }));
    conditions.push(json!({ "Content-Type": form.content_type }));
    conditions.push(json!(["content-length-range", form.size, form.size]));
    for (name, value) in form.fields.iter().chain(signing) {
        conditions.push(json!({ name: value }));
    }
    json!({
        "expiration": form.expires_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "conditions": conditions,
    })
    .to_string()
}

/// The fields a client posts for `form` besides `policy` and `x-amz-signature`: the key, the
/// content type, every pinned field and the signer's.
pub fn fields(form: &UploadForm, signing: &[(String, String)]) -> BTreeMap<String, String> {
    let mut fields: BTreeMap<String, String> = form.fields.iter().chain(signing).cloned().collect();
    fields.insert("key".into(), form.key.clone());
    fields.insert("Content-Type".into(), form.content_type.clone());
    fields
}

/// Fields S3 does not require a condition for.
fn exempt(name: &str) -> bool {
    matches!(name, "policy" | "x-amz-signature" | "file") || name.starts_with("x-ignore-")
}

/// Checks a posted form (field names lower-cased, the file `file_len` bytes) against its
/// decoded policy at `now`, as S3 does: the policy has not expired, every condition holds
/// (`eq`, `starts-with`, `content-length-range`; field names case-insensitive), and every
/// posted field is covered by a condition.
pub fn check(
    policy: &[u8],
    fields: &BTreeMap<String, String>,
    bucket: Option<&str>,
    file_len: u64,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    let invalid = || Refusal::Malformed("invalid policy document".into());
    let doc: Value = serde_json::from_slice(policy).map_err(|_| invalid())?;
    let expiration = doc["expiration"]
        .as_str()
        .and_then(|e| DateTime::parse_from_rfc3339(e).ok())
        .ok_or_else(invalid)?;
    if now >= expiration {
        return Err(Refusal::Expired);
    }
    let conditions = doc["conditions"].as_array().ok_or_else(invalid)?;
    let mut values = fields.clone();
    if let Some(bucket) = bucket {
        values.insert("bucket".into(), bucket.into());
    }
    let mut covered = std::collections::BTreeSet::new();
    for condition in conditions {
        let mut matches: Vec<(&str, String, String)> = Vec::new();
        match condition {
            Value::Object(map) if !map.is_empty() => {
                for (name, value) in map {
                    let value = value.as_str().ok_or_else(invalid)?;
                    matches.push(("eq", name.to_ascii_lowercase(), value.into()));
                }
            }
            Value::Array(c) if c.len() == 3 && c[0] == "content-length-range" => {
                let bound = |v: &Value| {
                    v.as_u64()
                        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                        .ok_or_else(invalid)
                };
                let (lo, hi) = (bound(&c[1])?, bound(&c[2])?);
                if file_len < lo {
                    return Err(Refusal::TooSmall);
                }
                if file_len > hi {
                    return Err(Refusal::TooLarge);
                }
            }
            Value::Array(c) if c.len() == 3 => {
                let op = c[0].as_str().filter(|o| *o == "eq" || *o == "starts-with");
                let name = c[1].as_str().and_then(|n| n.strip_prefix('$'));
                let (Some(op), Some(name), Some(value)) = (op, name, c[2].as_str()) else {
                    return Err(invalid());
                };
                matches.push((op, name.to_ascii_lowercase(), value.into()));
            }
            _ => return Err(invalid()),
        }
        for (op, name, expected) in matches {
            let ok = values.get(&name).is_some_and(|actual| match op {
                "eq" => *actual == expected,
                _ => actual.starts_with(&expected),
            });
            if !ok {
                return Err(Refusal::Condition(format!(
                    "[{op:?}, \"${name}\", {expected:?}]"
                )));
            }
            covered.insert(name);
        }
    }
    let extra: Vec<&String> = fields
        .keys()
        .filter(|k| !exempt(k) && !covered.contains(*k))
        .collect();
    if !extra.is_empty() {
        let names: Vec<&str> = extra.iter().map(|s| s.as_str()).collect();
        return Err(Refusal::Condition(format!(
            "extra input fields: {}",
            names.join(", ")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> UploadForm {
        UploadForm {
            key: "att/g:1/by-a/x".into(),
            content_type: "image/png".into(),
            size: 5,
            fields: vec![("x-amz-meta-name".into(), "a.png".into())],
            expires_at: Utc::now() + chrono::Duration::minutes(5),
        }
    }

    fn posted(f: &UploadForm) -> BTreeMap<String, String> {
        fields(f, &[])
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect()
    }

    #[test]
    fn a_form_as_signed_passes_and_any_change_fails() {
        let f = form();
        let doc = document(&f, Some("b"), &[]);
        let now = Utc::now();
        let ok = posted(&f);
        assert_eq!(check(doc.as_bytes(), &ok, Some("b"), 5, now), Ok(()));
        assert_eq!(
            check(doc.as_bytes(), &ok, Some("b"), 6, now),
            Err(Refusal::TooLarge)
        );
        assert_eq!(
            check(doc.as_bytes(), &ok, Some("b"), 4, now),
            Err(Refusal::TooSmall)
        );
        assert!(matches!(
            check(doc.as_bytes(), &ok, Some("other"), 5, now),
            Err(Refusal::Condition(_))
        ));
        let mut wrong_type = ok.clone();
        wrong_type.insert("content-type".into(), "text/html".into());
        assert!(matches!(
            check(doc.as_bytes(), &wrong_type, Some("b"), 5, now),
            Err(Refusal::Condition(_))
        ));
        let mut extra = ok.clone();
        extra.insert("x-amz-meta-evil".into(), "1".into());
        assert!(matches!(
            check(doc.as_bytes(), &extra, Some("b"), 5, now),
            Err(Refusal::Condition(_))
        ));
        assert_eq!(
            check(doc.as_bytes(), &ok, Some("b"), 5, f.expires_at),
            Err(Refusal::Expired)
        );
    }
}
