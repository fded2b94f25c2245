//! API Gateway WebSocket events of the real shape, built as the JSON AWS sends and parsed into
//! the same types the Lambda runtime hands the handlers.

use axum::http::HeaderMap;
use base64::Engine;
use chrono::{DateTime, Utc};
use messenger_lambda::{AuthorizerEvent, WsEvent};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// What API Gateway knows about a connection, reused in every event of it.
#[derive(Debug, Clone)]
pub struct ConnectionContext {
    pub api_id: String,
    pub stage: String,
    pub domain_name: String,
    pub connection_id: String,
    pub connected_at: DateTime<Utc>,
    pub source_ip: String,
    pub user_agent: Option<String>,
    /// The authorizer's context plus `principalId`, as API Gateway passes it to every route.
    pub authorizer: Map<String, Value>,
}

/// A random id in API Gateway's style (base64 of random bytes).
pub fn random_id() -> String {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).expect("the OS provides randomness");
    base64::engine::general_purpose::URL_SAFE.encode(bytes)
}

/// A request id for an invocation the gateway hands over in-process: unique in this process
/// and of API Gateway's style, without asking the OS for randomness per frame (the ids are for
/// logs and internal-error messages; nothing relies on them being unpredictable).
pub fn request_id() -> String {
    static PREFIX: OnceLock<[u8; 6]> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| {
        let mut bytes = [0u8; 6];
        getrandom::fill(&mut bytes).expect("the OS provides randomness");
        bytes
    });
    let mut bytes = [0u8; 12];
    bytes[..6].copy_from_slice(prefix);
    bytes[6..].copy_from_slice(&NEXT.fetch_add(1, Ordering::Relaxed).to_be_bytes()[2..]);
    base64::engine::general_purpose::URL_SAFE.encode(bytes)
}

fn request_time(t: DateTime<Utc>) -> String {
    t.format("%d/%b/%Y:%H:%M:%S +0000").to_string()
}

fn header_maps(headers: &HeaderMap) -> (Value, Value) {
    let mut single = Map::new();
    let mut multi: Map<String, Value> = Map::new();
    for (name, value) in headers {
        let v = value.to_str().unwrap_or_default().to_owned();
        single.insert(name.as_str().to_owned(), Value::from(v.clone()));
        let entry = multi.entry(name.as_str()).or_insert_with(|| json!([]));
        if let Value::Array(a) = entry {
            a.push(Value::from(v));
        }
    }
    (Value::Object(single), Value::Object(multi))
}

fn query_maps(query: &HashMap<String, String>) -> (Value, Value) {
    let single: Map<String, Value> = query
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
        .collect();
    let multi: Map<String, Value> = query.iter().map(|(k, v)| (k.clone(), json!([v]))).collect();
    (Value::Object(single), Value::Object(multi))
}

/// The REQUEST authorizer's event for a `$connect`.
pub fn authorizer(
    api_id: &str,
    stage: &str,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    source_ip: &str,
) -> AuthorizerEvent {
    let (h, mh) = header_maps(headers);
    let (q, mq) = query_maps(query);
    let v = json!({
        "type": "REQUEST",
        "methodArn": format!("arn:aws:execute-api:local:000000000000:{api_id}/{stage}/$connect"),
        "headers": h,
        "multiValueHeaders": mh,
        "queryStringParameters": q,
        "multiValueQueryStringParameters": mq,
        "stageVariables": {},
        "requestContext": {
            "routeKey": "$connect",
            "eventType": "CONNECT",
            "stage": stage,
            "requestId": random_id(),
            "apiId": api_id,
            "identity": { "sourceIp": source_ip },
        },
    });
    serde_json::from_value(v).expect("authorizer events match aws_lambda_events")
}

impl ConnectionContext {
    fn request_context(&self, route_key: &str, event_type: &str, now: DateTime<Utc>) -> Value {
        let mut authorizer = self.authorizer.clone();
        authorizer.insert("integrationLatency".into(), json!(0));
        let request_id = random_id();
        json!({
            "routeKey": route_key,
            "eventType": event_type,
            "extendedRequestId": request_id,
            "requestTime": request_time(now),
            "messageDirection": "IN",
            "stage": self.stage,
            "connectedAt": self.connected_at.timestamp_millis(),
            "requestTimeEpoch": now.timestamp_millis(),
            "identity": { "sourceIp": self.source_ip, "userAgent": self.user_agent },
            "requestId": request_id,
            "domainName": self.domain_name,
            "connectionId": self.connection_id,
            "apiId": self.api_id,
            "authorizer": authorizer,
        })
    }

    /// The `$connect` event (headers and query string included, no body).
    pub fn connect(
        &self,
        headers: &HeaderMap,
        query: &HashMap<String, String>,
        now: DateTime<Utc>,
    ) -> WsEvent {
        let (h, mh) = header_maps(headers);
        let (q, mq) = query_maps(query);
        parse(json!({
            "headers": h,
            "multiValueHeaders": mh,
            "queryStringParameters": q,
            "multiValueQueryStringParameters": mq,
            "requestContext": self.request_context("$connect", "CONNECT", now),
            "isBase64Encoded": false,
        }))
    }

    /// A `MESSAGE` event for a frame the client sent; binary frames arrive base64-encoded.
    pub fn message(&self, route_key: &str, body: Body, now: DateTime<Utc>) -> WsEvent {
        let mut ctx = self.request_context(route_key, "MESSAGE", now);
        ctx["messageId"] = json!(random_id());
        let (body, b64) = match body {
            Body::Text(t) => (t, false),
            Body::Binary(b) => (base64::engine::general_purpose::STANDARD.encode(b), true),
        };
        parse(json!({ "requestContext": ctx, "body": body, "isBase64Encoded": b64 }))
    }

    /// The `$disconnect` event, with the close code and reason.
    pub fn disconnect(&self, code: u16, reason: &str, now: DateTime<Utc>) -> WsEvent {
        let mut ctx = self.request_context("$disconnect", "DISCONNECT", now);
        ctx["disconnectStatusCode"] = json!(code);
        ctx["disconnectReason"] = json!(reason);
        parse(json!({
            "headers": { "Host": self.domain_name },
            "multiValueHeaders": { "Host": [self.domain_name] },
            "requestContext": ctx,
            "isBase64Encoded": false,
        }))
    }
}

/// A frame's payload.
pub enum Body {
    Text(String),
    Binary(Vec<u8>),
}

fn parse(v: Value) -> WsEvent {
    serde_json::from_value(v).expect("gateway events match aws_lambda_events")
}
