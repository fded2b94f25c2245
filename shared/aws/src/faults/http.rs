//! Test support: faults injected under the AWS SDK clients, at the HTTP connector, so the SDK's
//! retries, the store's own retries and their classification all run as in production.
//!
//! [`FaultyHttpClient`] wraps the HTTP client of an `SdkConfig`. For each request it asks the
//! [`FaultPlan`] for a fault and then either answers in the service's own error format without
//! sending anything (throttling, a cancelled transaction, a 500), fails with a timeout before
//! sending, or sends the request and drops the answer (a lost response: the write happened).
//! The operation is read from the request itself: DynamoDB's `X-Amz-Target`, the
//! `@connections` path, SNS's form `Action`; the SDK's attempt from `amz-sdk-request`.

use super::plan::{Fault, FaultPlan};
use aws_config::SdkConfig;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use std::sync::Arc;

/// An `HttpClient` that injects the faults of a [`FaultPlan`] into every request.
#[derive(Debug, Clone)]
pub struct FaultyHttpClient {
    inner: SharedHttpClient,
    plan: Arc<FaultPlan>,
}

impl FaultyHttpClient {
    /// The same SDK configuration, with `plan`'s faults under every client built from it.
    pub fn wrap(sdk: &SdkConfig, plan: Arc<FaultPlan>) -> SdkConfig {
        let inner = sdk
            .http_client()
            .expect("the SDK configuration has an HTTP client (sdk::load sets one)");
        sdk.to_builder().http_client(Self { inner, plan }).build()
    }
}

impl HttpClient for FaultyHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(FaultyConnector {
            inner: self.inner.http_connector(settings, components),
            plan: self.plan.clone(),
        })
    }
}

#[derive(Debug)]
struct FaultyConnector {
    inner: SharedHttpConnector,
    plan: Arc<FaultPlan>,
}

/// Which service a request is for, by its wire protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// JSON over `X-Amz-Target` (DynamoDB).
    Json,
    /// REST JSON (API Gateway's `@connections`).
    RestJson,
    /// Query: form in, XML out (SNS).
    Query,
}

/// The operation a request calls, and how its errors look.
fn operation(req: &HttpRequest) -> (Protocol, String) {
    if let Some(target) = req.headers().get("x-amz-target") {
        let op = target.rsplit('.').next().unwrap_or(target);
        return (Protocol::Json, op.to_owned());
    }
    if req.uri().contains("/@connections/") {
        let op = match req.method() {
            "POST" => "PostToConnection",
            "GET" => "GetConnection",
            _ => "DeleteConnection",
        };
        return (Protocol::RestJson, op.to_owned());
    }
    let body = req.body().bytes().unwrap_or_default();
    let action = std::str::from_utf8(body)
        .ok()
        .and_then(|b| b.split('&').find_map(|kv| kv.strip_prefix("Action=")))
        .unwrap_or("Unknown");
    (Protocol::Query, action.to_owned())
}

/// The SDK's `amz-sdk-request: attempt=N; max=M`.
fn attempt(req: &HttpRequest) -> Option<(u32, u32)> {
    let h = req.headers().get("amz-sdk-request")?;
    let field = |name: &str| {
        h.split(';')
            .find_map(|kv| kv.trim().strip_prefix(name))
            .and_then(|v| v.parse().ok())
    };
    Some((field("attempt=")?, field("max=")?))
}

/// How many actions a TransactWriteItems request holds (for its cancellation reasons).
fn transaction_actions(req: &HttpRequest) -> usize {
    req.body()
        .bytes()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
        .and_then(|v| v["TransactItems"].as_array().map(Vec::len))
        .unwrap_or(1)
}

fn response(status: u16, headers: &[(&'static str, &str)], body: String) -> HttpResponse {
    let mut r = HttpResponse::new(
        StatusCode::try_from(status).expect("a valid status"),
        SdkBody::from(body),
    );
    for (k, v) in headers {
        r.headers_mut().insert(*k, v.to_string());
    }
    r
}

/// A DynamoDB error answer (JSON protocol).
fn json_error(status: u16, kind: &str, message: &str, extra: serde_json::Value) -> HttpResponse {
    let mut body = serde_json::json!({
        "__type": format!("com.amazonaws.dynamodb.v20120810#{kind}"),
        "message": message,
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    response(
        status,
        &[("content-type", "application/x-amz-json-1.0")],
        body.to_string(),
    )
}

/// A TransactWriteItems cancelled with `code` on its first action, as DynamoDB reports it.
fn cancelled(actions: usize, code: &str) -> HttpResponse {
    let mut reasons = vec![serde_json::json!({"Code": code, "Message": "injected fault"})];
    reasons.extend((1..actions).map(|_| serde_json::json!({"Code": "None"})));
    let codes: Vec<&str> = std::iter::once(code)
        .chain((1..actions).map(|_| "None"))
        .collect();
    json_error(
        400,
        "TransactionCanceledException",
        &format!(
            "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
            codes.join(", ")
        ),
        serde_json::json!({ "CancellationReasons": reasons }),
    )
}

/// The synthetic answer of `fault` for this request, or `None` when the fault is not an answer.
fn answer(protocol: Protocol, req: &HttpRequest, fault: Fault) -> Option<HttpResponse> {
    let none = serde_json::Value::Null;
    Some(match (protocol, fault) {
        (Protocol::Json, Fault::Throttle) => json_error(
            400,
            "ThrottlingException",
            "Rate of requests exceeds the allowed throughput (injected fault)",
            none,
        ),
        (Protocol::Json, Fault::ThrottleInTransaction) => {
            cancelled(transaction_actions(req), "ThrottlingError")
        }
        (Protocol::Json, Fault::Conflict) => {
            cancelled(transaction_actions(req), "TransactionConflict")
        }
        (Protocol::Json, Fault::ServerError) => response(
            500,
            &[("content-type", "application/x-amz-json-1.0")],
            serde_json::json!({
                "__type": "com.amazon.coral.service#InternalServerError",
                "message": "injected fault",
            })
            .to_string(),
        ),
        (Protocol::RestJson, Fault::Throttle) => response(
            429,
            &[
                ("content-type", "application/json"),
                ("x-amzn-errortype", "LimitExceededException"),
            ],
            r#"{"message":"Too Many Requests (injected fault)"}"#.into(),
        ),
        (Protocol::RestJson, Fault::ServerError) => response(
            500,
            &[
                ("content-type", "application/json"),
                ("x-amzn-errortype", "InternalServerErrorException"),
            ],
            r#"{"message":"Internal server error (injected fault)"}"#.into(),
        ),
        (Protocol::Query, Fault::Throttle | Fault::ServerError) => {
            let (status, kind, code) = if fault == Fault::Throttle {
                (400, "Sender", "Throttling")
            } else {
                (500, "Receiver", "InternalError")
            };
            response(
                status,
                &[("content-type", "text/xml")],
                format!(
                    "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><Error>\
                     <Type>{kind}</Type><Code>{code}</Code><Message>injected fault</Message>\
                     </Error><RequestId>00000000-0000-0000-0000-000000000000</RequestId>\
                     </ErrorResponse>"
                ),
            )
        }
        _ => return None,
    })
}

/// The faults that can happen to an operation.
fn applicable(protocol: Protocol, op: &str) -> &'static [Fault] {
    const PLAIN: &[Fault] = &[
        Fault::Throttle,
        Fault::ServerError,
        Fault::Timeout,
        Fault::LostResponse,
    ];
    match (protocol, op) {
        (Protocol::Json, "TransactWriteItems") => &Fault::ALL,
        _ => PLAIN,
    }
}

impl HttpConnector for FaultyConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (protocol, op) = operation(&request);
        let fault = self
            .plan
            .pick(&op, applicable(protocol, &op), attempt(&request));
        let Some(fault) = fault else {
            return self.inner.call(request);
        };
        tracing::debug!(operation = %op, %fault, "injecting a fault");
        if let Some(answer) = answer(protocol, &request, fault) {
            return HttpConnectorFuture::ready(Ok(answer));
        }
        let inner = self.inner.clone();
        HttpConnectorFuture::new(async move {
            if fault.happened_anyway() {
                // The service does the work; its answer never reaches the caller.
                let _ = inner.call(request).await;
            }
            Err(ConnectorError::timeout(
                format!("injected fault: {fault} on {op}").into(),
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(
        headers: &[(&'static str, &str)],
        uri: &str,
        method: &str,
        body: &str,
    ) -> HttpRequest {
        let mut r = HttpRequest::new(SdkBody::from(body.to_owned()));
        r.set_uri(uri).unwrap();
        r.set_method(method).unwrap();
        for (k, v) in headers {
            r.headers_mut().insert(*k, v.to_string());
        }
        r
    }

    #[test]
    fn operations_and_attempts_are_read_from_the_request() {
        let twi = request(
            &[
                ("x-amz-target", "DynamoDB_20120810.TransactWriteItems"),
                ("amz-sdk-request", "attempt=2; max=4"),
            ],
            "http://127.0.0.1:4566/",
            "POST",
            r#"{"TransactItems":[{},{},{}]}"#,
        );
        assert_eq!(
            operation(&twi),
            (Protocol::Json, "TransactWriteItems".to_owned())
        );
        assert_eq!(attempt(&twi), Some((2, 4)));
        assert_eq!(transaction_actions(&twi), 3);
        let post = request(&[], "http://h/prod/@connections/abc%3D", "POST", "{}");
        assert_eq!(
            operation(&post),
            (Protocol::RestJson, "PostToConnection".to_owned())
        );
        assert_eq!(attempt(&post), None);
        let publish = request(
            &[],
            "http://h/",
            "POST",
            "Action=Publish&Version=2010-03-31",
        );
        assert_eq!(operation(&publish), (Protocol::Query, "Publish".to_owned()));
    }

    #[test]
    fn a_throttled_transaction_names_its_reason_on_the_first_action() {
        let twi = request(
            &[("x-amz-target", "DynamoDB_20120810.TransactWriteItems")],
            "http://h/",
            "POST",
            r#"{"TransactItems":[{},{},{}]}"#,
        );
        let r = answer(Protocol::Json, &twi, Fault::ThrottleInTransaction).unwrap();
        assert_eq!(r.status().as_u16(), 400);
        let body: serde_json::Value = serde_json::from_slice(r.body().bytes().unwrap()).unwrap();
        assert_eq!(body["CancellationReasons"][0]["Code"], "ThrottlingError");
        assert_eq!(body["CancellationReasons"][2]["Code"], "None");
        assert!(answer(Protocol::Json, &twi, Fault::LostResponse).is_none());
    }
}
