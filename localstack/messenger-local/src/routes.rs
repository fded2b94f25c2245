//! The route table: route keys to the `functions/*` handlers, as the template wires them.

use messenger::App;
use messenger::apigw::{WsEvent, WsResponse};
use messenger::protocol::{ACTIONS, DEVICE_ACTIONS, GROUP_ACTIONS};

/// API Gateway's route selection on `$request.body.action`: a text frame whose JSON `action`
/// names a route goes there; anything else (no JSON, no action, unknown action, binary) goes to
/// `$default`.
pub fn select(body: Option<&str>) -> &'static str {
    let action = body
        .and_then(|b| serde_json::from_str::<serde_json::Value>(b).ok())
        .and_then(|v| v.get("action").and_then(|a| a.as_str()).map(str::to_owned));
    match action {
        Some(a) => ACTIONS
            .iter()
            .copied()
            .find(|r| *r == a)
            .unwrap_or("$default"),
        None => "$default",
    }
}

/// Invokes the handler integrated with `route_key`.
pub async fn invoke(app: &App, route_key: &str, event: WsEvent) -> WsResponse {
    match route_key {
        "$connect" => fn_connect::handle(app, event).await,
        "$disconnect" => fn_disconnect::handle(app, event).await,
        "send" => fn_send::handle(app, event).await,
        "ack" => fn_ack::handle(app, event).await,
        "sync" | "history" => fn_sync::handle(app, event).await,
        "presence" => fn_presence::handle(app, event).await,
        r if GROUP_ACTIONS.contains(&r) => fn_groups::handle(app, event).await,
        r if DEVICE_ACTIONS.contains(&r) => fn_devices::handle(app, event).await,
        _ => fn_default::handle(app, event).await,
    }
}

#[cfg(test)]
mod tests {
    use super::select;

    #[test]
    fn route_selection_matches_api_gateway() {
        assert_eq!(select(Some(r#"{"action":"send"}"#)), "send");
        assert_eq!(select(Some(r#"{"action":"history"}"#)), "history");
        assert_eq!(select(Some(r#"{"action":"fly"}"#)), "$default");
        assert_eq!(select(Some(r#"{"action":7}"#)), "$default");
        assert_eq!(select(Some("not json")), "$default");
        assert_eq!(select(None), "$default");
    }
}
