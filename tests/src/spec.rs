//! The protocol spec, docs/asyncapi.yaml, as a check on every frame a test client receives.
//!
//! Loaded once per test binary. A frame is validated against the schema its `type` selects in
//! the spec's `ServerFrame` list (formats included), so a server that sends a frame, field or
//! value the spec does not describe fails the test that received it.

use jsonschema::Validator;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::LazyLock;

const SPEC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/asyncapi.yaml");

/// Server frame `type` → (schema name, its validator).
static SERVER_FRAMES: LazyLock<HashMap<String, (String, Validator)>> = LazyLock::new(load);

fn load() -> HashMap<String, (String, Validator)> {
    let text = std::fs::read_to_string(SPEC_PATH)
        .unwrap_or_else(|e| panic!("cannot read {SPEC_PATH}: {e}"));
    let spec: Value = serde_yaml_ng::from_str(&text).expect("docs/asyncapi.yaml is YAML");
    let schemas = &spec["components"]["schemas"];
    let list = schemas["ServerFrame"]["oneOf"]
        .as_array()
        .expect("docs/asyncapi.yaml lists the server frames in ServerFrame.oneOf");
    list.iter()
        .map(|entry| {
            let reference = entry["$ref"].as_str().expect("ServerFrame lists $refs");
            let name = reference.rsplit('/').next().unwrap_or(reference);
            let ty = schemas[name]["properties"]["type"]["const"]
                .as_str()
                .unwrap_or_else(|| panic!("schema {name} has no `type` const"));
            // The schemas refer to each other as #/components/schemas/…: keep them at that path.
            let schema = json!({ "$ref": reference, "components": { "schemas": schemas } });
            let validator = jsonschema::draft7::options()
                .should_validate_formats(true)
                .build(&schema)
                .unwrap_or_else(|e| panic!("schema {name} does not compile: {e}"));
            (ty.to_owned(), (name.to_owned(), validator))
        })
        .collect()
}

/// Panics, saying why, unless `frame` is a server frame as docs/asyncapi.yaml describes it.
pub fn check_server_frame(frame: &Value) {
    let Some((name, validator)) = frame["type"].as_str().and_then(|t| SERVER_FRAMES.get(t)) else {
        panic!("a server frame whose type is not in docs/asyncapi.yaml (ServerFrame): {frame}");
    };
    let errors: Vec<String> = validator
        .iter_errors(frame)
        .map(|e| format!("{} at `{}`", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "a server frame does not match docs/asyncapi.yaml ({name}): {}\n  frame: {frame}",
        errors.join("; ")
    );
}

#[cfg(test)]
mod tests {
    use super::check_server_frame;
    use serde_json::json;

    fn sent() -> serde_json::Value {
        json!({"id":"r1","type":"sent","client_msg_id":"c-1","conversation":"dm:a:b","seq":1,
               "sent_at":"2026-11-29T05:58:01.472Z"})
    }

    #[test]
    fn a_frame_as_specified_passes() {
        check_server_frame(&sent());
        check_server_frame(&json!({"type":"presence","users":[
            {"user":"bob","online":false,"last_seen":null}]}));
    }

    #[test]
    #[should_panic(expected = "does not match docs/asyncapi.yaml (Sent)")]
    fn an_undocumented_field_fails() {
        let mut frame = sent();
        frame["extra"] = json!(1);
        check_server_frame(&frame);
    }

    #[test]
    #[should_panic(expected = "does not match docs/asyncapi.yaml (Sent)")]
    fn a_timestamp_in_another_format_fails() {
        let mut frame = sent();
        frame["sent_at"] = json!("yesterday");
        check_server_frame(&frame);
    }

    #[test]
    #[should_panic(expected = "not in docs/asyncapi.yaml")]
    fn an_unknown_frame_type_fails() {
        check_server_frame(&json!({"type":"surprise"}));
    }
}
