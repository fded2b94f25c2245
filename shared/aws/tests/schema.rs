//! The tables' TTL configuration: the tables whose items the code expires (messages with
//! retention and their idempotency keys, push claims) have DynamoDB TTL on the attribute the
//! code writes (a user's presence item never expires: its expired connections are dropped by
//! the next `$connect`),
//! both as `create_tables` makes them (on the emulator) and as `infra/template.yaml` declares
//! them (MiniStack's CloudFormation ignores `TimeToLiveSpecification`, so the deployed stack
//! cannot show it: docs/infra.md).

mod common;

use messenger_aws::dynamo::TTL_ATTR;
use yaml_rust2::{Yaml, YamlLoader};

/// (template logical id, whether its items expire). `LastSeenTable` is the presence table.
const TABLES: [(&str, bool); 4] = [
    ("MessagesTable", true),
    ("DevicesTable", true),
    ("MembershipsTable", false),
    ("LastSeenTable", false),
];

#[tokio::test]
async fn create_tables_turns_ttl_on_where_items_expire() {
    let store = common::store().await;
    let sdk = messenger_aws::sdk::for_endpoint(&common::endpoint()).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let t = store.tables();
    let names = [&t.messages, &t.devices, &t.memberships, &t.presence];
    for ((id, expires), name) in TABLES.into_iter().zip(names) {
        let ttl = client
            .describe_time_to_live()
            .table_name(name)
            .send()
            .await
            .unwrap()
            .time_to_live_description
            .expect("a TTL description");
        let status = ttl.time_to_live_status.map(|s| s.as_str().to_owned());
        let got = (status.as_deref(), ttl.attribute_name.as_deref());
        if expires {
            assert_eq!(got, (Some("ENABLED"), Some(TTL_ATTR)), "{id}");
        } else {
            assert_eq!(got.0, Some("DISABLED"), "{id}");
        }
    }
}

#[test]
fn the_template_turns_ttl_on_where_items_expire() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/template.yaml");
    let text = std::fs::read_to_string(path).expect("infra/template.yaml");
    let template = YamlLoader::load_from_str(&text).unwrap().remove(0);
    for (id, expires) in TABLES {
        let table = &template["Resources"][id];
        assert_eq!(table["Type"].as_str(), Some("AWS::DynamoDB::Table"), "{id}");
        let ttl = &table["Properties"]["TimeToLiveSpecification"];
        if expires {
            assert_eq!(ttl["AttributeName"].as_str(), Some(TTL_ATTR), "{id}");
            assert_eq!(ttl["Enabled"], Yaml::Boolean(true), "{id}");
        } else {
            assert!(ttl.is_badvalue(), "{id} has no TTL: {ttl:?}");
        }
    }
}
