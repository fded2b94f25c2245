//! The `$connect` REQUEST authorizer (`functions/authorizer`, and the embedded gateway's
//! handshake): verifies the JWT in the `token` query parameter (a development HS256 token or an
//! identity provider's, per the [`Authenticator`]), settles the device (its `device` claim or
//! the `device` query parameter), and hands both to every route of the connection through its
//! context.

use crate::{AuthorizerEvent, AuthorizerResponse, CTX_DEVICE, CTX_USER};
use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerPolicy;
use aws_lambda_events::iam::{IamPolicyEffect, IamPolicyStatement};
use chrono::{DateTime, Utc};
use messenger::auth::{AuthError, Authenticator, JwksError};
use serde_json::json;

/// The query parameter that carries the token (browsers cannot set WebSocket headers).
pub const TOKEN_PARAM: &str = "token";
/// The query parameter naming the connection's device, for tokens without a `device` claim
/// (an identity provider's never have one).
pub const DEVICE_PARAM: &str = "device";

/// Decides a `$connect`: Allow with the identity in the context, or Deny (API Gateway answers
/// the handshake with 403). API Gateway itself answers 401, without calling us, when the
/// identity source (the `token` parameter) is missing. `Err`: the issuer's keys are unavailable;
/// the caller fails the invocation, and API Gateway answers 500 (nobody gets in, and the client
/// knows to retry rather than to sign in again).
pub async fn handle(
    auth: &Authenticator,
    event: &AuthorizerEvent,
    now: DateTime<Utc>,
) -> Result<AuthorizerResponse, JwksError> {
    let resource = event.method_arn.clone().unwrap_or_else(|| "*".into());
    let query = &event.query_string_parameters;
    let token = query.first(TOKEN_PARAM).unwrap_or("");
    match auth
        .authenticate(token, query.first(DEVICE_PARAM), now)
        .await
    {
        Ok(id) => {
            tracing::info!(user = %id.user, device = %id.device, "connection authorised");
            let mut r = policy(id.user.as_str(), IamPolicyEffect::Allow, resource);
            r.context = json!({ CTX_USER: id.user.as_str(), CTX_DEVICE: id.device.as_str() });
            Ok(r)
        }
        Err(AuthError::Refused(e)) => {
            tracing::info!(reason = %e, "connection refused");
            Ok(policy("anonymous", IamPolicyEffect::Deny, resource))
        }
        Err(AuthError::Unavailable(e)) => {
            tracing::error!(error = %e, "issuer keys unavailable: connection refused with 500");
            Err(e)
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
    use messenger::auth::testing::{StaticJwks, TestKey};
    use messenger::auth::{IssuerConfig, IssuerVerifier};
    use messenger::domain::{DeviceId, UserId};
    use std::sync::Arc;

    fn event(query: serde_json::Value) -> AuthorizerEvent {
        serde_json::from_value(json!({
            "type": "REQUEST",
            "methodArn": "arn:aws:execute-api:eu-west-1:123456789012:abc/prod/$connect",
            "queryStringParameters": query,
            "requestContext": {"stage": "prod"}
        }))
        .unwrap()
    }

    fn dev() -> Authenticator {
        Authenticator::Hs256(b"s".to_vec())
    }

    fn dev_token(device: Option<&str>) -> String {
        let now = Utc::now();
        let device = device.map(|d| DeviceId::new(d).unwrap());
        messenger::auth::mint(
            b"s",
            &UserId::new("alice").unwrap(),
            device.as_ref(),
            now,
            now + chrono::Duration::hours(1),
        )
    }

    #[tokio::test]
    async fn a_valid_token_is_allowed_with_user_and_device_in_context() {
        let t = dev_token(Some("phone"));
        let r = handle(&dev(), &event(json!({ "token": t })), Utc::now())
            .await
            .unwrap();
        assert!(allows(&r));
        assert_eq!(r.context, json!({"userId": "alice", "device": "phone"}));
        // Without a device claim the `device` parameter names it.
        let t = dev_token(None);
        let r = handle(
            &dev(),
            &event(json!({ "token": t, "device": "laptop" })),
            Utc::now(),
        )
        .await
        .unwrap();
        assert_eq!(r.context, json!({"userId": "alice", "device": "laptop"}));
    }

    #[tokio::test]
    async fn a_bad_or_missing_token_or_a_bad_device_is_denied() {
        let deny = async |query| !allows(&handle(&dev(), &event(query), Utc::now()).await.unwrap());
        assert!(deny(json!({ "token": "x.y.z" })).await);
        assert!(deny(json!({})).await);
        assert!(deny(json!({ "token": dev_token(None), "device": "a b" })).await);
        assert!(deny(json!({ "token": dev_token(Some("phone")), "device": "laptop" })).await);
    }

    #[tokio::test]
    async fn an_issuer_token_is_allowed_and_unavailable_keys_fail_the_invocation() {
        let key = TestKey::es256_a("k");
        let source = Arc::new(StaticJwks::new(&[&key]));
        let issuer = "https://id.example.com/";
        let config = IssuerConfig::new(issuer, vec!["app".into()]);
        let auth = Authenticator::Issuer(Arc::new(IssuerVerifier::new(config, source.clone())));
        let now = Utc::now();
        let token = key.sign(&json!({
            "iss": issuer, "aud": "app", "sub": "bob", "exp": now.timestamp() + 600
        }));
        let query = json!({ "token": token, "device": "phone" });
        let r = handle(&auth, &event(query.clone()), now).await.unwrap();
        assert!(allows(&r));
        assert_eq!(r.context, json!({"userId": "bob", "device": "phone"}));

        // A fresh container whose issuer is down: no Allow, no Deny either.
        let config = IssuerConfig::new(issuer, vec!["app".into()]);
        source.fail(true);
        let auth = Authenticator::Issuer(Arc::new(IssuerVerifier::new(config, source)));
        assert!(handle(&auth, &event(query), now).await.is_err());
    }
}
