//! The `$connect` REQUEST authorizer (`functions/authorizer`, and the embedded gateway's
//! handshake): verifies the HS256 JWT in the `token` query parameter and hands the user (and
//! device) to every route of the connection through its context.

use crate::{AuthorizerEvent, AuthorizerResponse, CTX_DEVICE, CTX_USER};
use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerPolicy;
use aws_lambda_events::iam::{IamPolicyEffect, IamPolicyStatement};
use chrono::{DateTime, Utc};
use messenger::auth;
use serde_json::json;

/// The query parameter that carries the token (browsers cannot set WebSocket headers).
pub const TOKEN_PARAM: &str = "token";

/// Decides a `$connect`: Allow with the identity in the context, or Deny (API Gateway answers
/// the handshake with 403). API Gateway itself answers 401, without calling us, when the
/// identity source (the `token` parameter) is missing.
pub fn handle(secret: &[u8], event: &AuthorizerEvent, now: DateTime<Utc>) -> AuthorizerResponse {
    let resource = event.method_arn.clone().unwrap_or_else(|| "*".into());
    let token = event
        .query_string_parameters
        .first(TOKEN_PARAM)
        .unwrap_or("");
    match auth::verify(secret, token, now) {
        Ok(id) => {
            tracing::info!(user = %id.user, device = %id.device, "connection authorised");
            let mut r = policy(id.user.as_str(), IamPolicyEffect::Allow, resource);
            r.context = json!({ CTX_USER: id.user.as_str(), CTX_DEVICE: id.device.as_str() });
            r
        }
        Err(e) => {
            tracing::info!(reason = %e, "connection refused");
            policy("anonymous", IamPolicyEffect::Deny, resource)
        }
    }
}

fn policy(principal: &str, effect: IamPolicyEffect, resource: String) -> AuthorizerResponse {
    let mut statement = IamPolicyStatement::default();
    statement.action = vec!["execute-api:Invoke".into()];
    statement.effect = effect;
    statement.resource = vec![resource];
    let mut document = ApiGatewayCustomAuthorizerPolicy::default();
    document.version = Some("2012-10-17".into());
    document.statement = vec![statement];
    let mut r = AuthorizerResponse::default();
    r.principal_id = Some(principal.into());
    r.policy_document = document;
    r
}

/// Whether an authorizer response allows the connection.
pub fn allows(r: &AuthorizerResponse) -> bool {
    let statements = &r.policy_document.statement;
    !statements.is_empty()
        && statements
            .iter()
            .all(|s| s.effect == IamPolicyEffect::Allow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use messenger::domain::{DeviceId, UserId};

    fn event(token: Option<&str>) -> AuthorizerEvent {
        let q = token.map_or(json!({}), |t| json!({ "token": t }));
        serde_json::from_value(json!({
            "type": "REQUEST",
            "methodArn": "arn:aws:execute-api:eu-west-1:123456789012:abc/prod/$connect",
            "queryStringParameters": q,
            "requestContext": {"stage": "prod"}
        }))
        .unwrap()
    }

    #[test]
    fn a_valid_token_is_allowed_with_user_and_device_in_context() {
        let now = Utc::now();
        let user = UserId::new("alice").unwrap();
        let device = DeviceId::new("phone").unwrap();
        let t = auth::mint(
            b"s",
            &user,
            Some(&device),
            now,
            now + chrono::Duration::hours(1),
        );
        let r = handle(b"s", &event(Some(&t)), now);
        assert!(allows(&r));
        assert_eq!(r.context, json!({"userId": "alice", "device": "phone"}));
    }

    #[test]
    fn a_bad_or_missing_token_is_denied() {
        assert!(!allows(&handle(b"s", &event(Some("x.y.z")), Utc::now())));
        assert!(!allows(&handle(b"s", &event(None), Utc::now())));
    }
}
