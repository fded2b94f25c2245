//! The deployed API must be exactly the route table: `infra/template.yaml`'s route keys, and the
//! function each one's integration invokes (or `MOCK`), are those of `messenger::routes`. A route
//! missing on either side, or wired to another function, fails here. Also: fn-notify's stream
//! mapping has an on-failure destination.

use messenger::routes::{Function, Integration, Route};
use std::collections::{BTreeMap, BTreeSet};
use yaml_rust2::{Yaml, YamlLoader};

fn template() -> Yaml {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/template.yaml");
    let text = std::fs::read_to_string(path).expect("infra/template.yaml");
    // CloudFormation's short tags (!Sub, !Ref, …) load as their plain values.
    YamlLoader::load_from_str(&text)
        .expect("the template is YAML")
        .remove(0)
}

/// Resources of one type, by logical id.
fn resources<'a>(t: &'a Yaml, kind: &str) -> BTreeMap<&'a str, &'a Yaml> {
    t["Resources"]
        .as_hash()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .map(|(id, r)| (id.as_str().expect("logical id"), r))
        .collect()
}

/// The references `${Id}` / `${Id.Attr}` in a `!Sub` string, as (Id, Attr).
fn references(sub: &str) -> Vec<(&str, Option<&str>)> {
    sub.split("${")
        .skip(1)
        .filter_map(|rest| rest.split_once('}'))
        .map(|(r, _)| match r.split_once('.') {
            Some((id, attr)) => (id, Some(attr)),
            None => (r, None),
        })
        .collect()
}

#[test]
fn every_route_key_targets_the_function_the_route_table_names() {
    let t = template();
    let integrations = resources(&t, "AWS::ApiGatewayV2::Integration");
    let deployed: BTreeMap<String, String> = resources(&t, "AWS::ApiGatewayV2::Route")
        .values()
        .map(|r| {
            let p = &r["Properties"];
            let key = p["RouteKey"].as_str().expect("RouteKey").to_owned();
            let target = p["Target"].as_str().expect("Target");
            let (integration_id, _) = references(target)[0];
            let integration = integrations
                .get(integration_id)
                .unwrap_or_else(|| panic!("route {key}: no integration {target}"));
            let kind = integration["Properties"]["IntegrationType"].as_str();
            if kind == Some("MOCK") {
                // Answered by API Gateway itself: no function, no URI, and no route response
                // (a reply would cost a message; none is sent).
                assert!(
                    integration["Properties"]["IntegrationUri"].is_badvalue(),
                    "route {key}: a MOCK integration names no function"
                );
                assert!(
                    r["Properties"]["RouteResponseSelectionExpression"].is_badvalue(),
                    "route {key}: a MOCK route is one-way"
                );
                return (key, "MOCK".to_owned());
            }
            assert_eq!(kind, Some("AWS_PROXY"), "route {key}");
            let uri = integration["Properties"]["IntegrationUri"]
                .as_str()
                .unwrap_or_else(|| panic!("route {key}: integration without a Lambda URI"));
            let function = references(uri)
                .into_iter()
                .find_map(|(id, attr)| (attr == Some("Arn")).then_some(id))
                .unwrap_or_else(|| panic!("route {key}: the integration names no function"));
            (key, function.to_owned())
        })
        .collect();
    let table: BTreeMap<String, String> = Route::all()
        .map(|r| {
            let wired = match r.integration() {
                Integration::Lambda(f) => f.template_id(),
                Integration::Mock => "MOCK".to_owned(),
            };
            (r.key().to_owned(), wired)
        })
        .collect();
    let differences: Vec<String> = table
        .keys()
        .chain(deployed.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|k| deployed.get(*k) != table.get(*k))
        .map(|k| match (table.get(k), deployed.get(k)) {
            (Some(f), None) => format!("{k}: in the route table ({f}), not in the template"),
            (None, Some(f)) => format!("{k}: in the template ({f}), not in the route table"),
            (want, got) => format!("{k}: the table says {want:?}, the template wires {got:?}"),
        })
        .collect();
    assert!(
        differences.is_empty(),
        "infra/template.yaml and messenger::routes disagree:\n{}",
        differences.join("\n")
    );
}

#[test]
fn every_route_function_is_deployed_and_the_stage_waits_for_every_route() {
    let t = template();
    let functions = resources(&t, "AWS::Lambda::Function");
    for f in Function::ALL {
        assert!(
            functions.contains_key(f.template_id().as_str()),
            "{} is not in the template",
            f.template_id()
        );
    }
    let routes: BTreeSet<&str> = resources(&t, "AWS::ApiGatewayV2::Route")
        .into_keys()
        .collect();
    let stage = resources(&t, "AWS::ApiGatewayV2::Stage");
    let (_, stage) = stage.first_key_value().expect("a stage");
    let waits: BTreeSet<&str> = stage["DependsOn"]
        .as_vec()
        .expect("the stage's DependsOn")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    // The first automatic deployment must include every route.
    assert_eq!(waits, routes);
}

/// The README's route table names every route key, and the use-case file each row names exists.
#[test]
fn the_readme_maps_every_route_to_a_use_case_file_that_exists() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).expect("README.md");
    for route in Route::all() {
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", route.key())))
            .unwrap_or_else(|| panic!("README.md has no row for `{}`", route.key()));
        let Some(function) = route.function() else {
            assert!(
                row.contains("MOCK") && !row.contains("functions/"),
                "{row}: a MOCK route runs no function"
            );
            continue;
        };
        let dir = function.dir();
        assert!(
            row.contains(&format!("`functions/{dir}`")),
            "{row}: expected functions/{dir}"
        );
        let files: Vec<&str> = row.split('`').filter(|p| p.ends_with(".rs")).collect();
        assert!(!files.is_empty(), "{row}: no use-case file");
        for f in files {
            let path = format!("{root}/shared/src/{f}");
            assert!(
                std::path::Path::new(&path).exists(),
                "{row}: {path} is missing"
            );
        }
    }
}

/// fn-notify's stream mapping gives up on a batch only after retries and an hour, and then
/// records it in a queue its role may send to (not silently): the on-failure destination.
#[test]
fn the_notify_stream_sends_batches_it_gives_up_on_to_a_queue() {
    let t = template();
    let mappings = resources(&t, "AWS::Lambda::EventSourceMapping");
    let notify = &mappings["NotifyEventSource"]["Properties"];
    assert_eq!(
        notify["FunctionResponseTypes"][0].as_str(),
        Some("ReportBatchItemFailures")
    );
    assert!(notify["MaximumRetryAttempts"].as_i64().is_some());
    assert!(notify["MaximumRecordAgeInSeconds"].as_i64().is_some());
    let destination = notify["DestinationConfig"]["OnFailure"]["Destination"]
        .as_str()
        .expect("an on-failure destination");
    let queue = destination
        .strip_suffix(".Arn")
        .expect("!GetAtt <queue>.Arn");
    assert!(
        resources(&t, "AWS::SQS::Queue").contains_key(queue),
        "{queue} is not a queue of the template"
    );
    let role = &resources(&t, "AWS::IAM::Role")["NotifyRole"];
    let statements = role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        .as_vec()
        .expect("statements");
    assert!(
        statements
            .iter()
            .any(|s| s["Action"].as_str() == Some("sqs:SendMessage")
                && s["Resource"].as_str() == Some(destination)),
        "NotifyRole may not send to {queue}"
    );
}
