//! Application layer: a client request as the use cases see it, whatever carried it (an API
//! Gateway event on Lambda, a socket of the embedded gateway): the authenticated [`Caller`], the
//! ids to echo, and the frame, parsed once ([`Request::parse`]).

use crate::domain::{ConnectionId, DeviceId, UserId, first_chars};
use crate::protocol::ServerFrame;
use crate::{App, Error};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Longest request `id` (and echoed `client_msg_id`) we send back.
const MAX_REQUEST_ID_LEN: usize = 128;

/// The authenticated connection a request came from. The user only ever comes from the
/// authorizer, never from a frame.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: UserId,
    pub device: DeviceId,
    pub connection: ConnectionId,
    /// When the connection was opened, when the carrier knows it.
    pub connected_at: Option<DateTime<Utc>>,
}

/// What a client sent on its socket.
#[derive(Debug, Clone)]
pub enum Frame<'a> {
    Text(&'a str),
    /// A text frame that is JSON, parsed already by the carrier (the embedded gateway parses
    /// it once for its route selection, then hands it over): the same as its `Text`.
    Json(Value),
    /// Binary frames are not part of the protocol: they are answered with `bad_request`.
    Binary,
}

/// A client frame on a route, with the caller and what we echo back.
#[derive(Debug)]
pub struct Request {
    pub caller: Caller,
    /// The client's request id, echoed in every reply.
    pub id: Option<Value>,
    /// The carrier's request id (API Gateway's), for logs and internal-error messages.
    pub request_id: String,
    body: Value,
}

impl Request {
    /// A request with an already parsed body, for tests and tools.
    pub fn new(caller: Caller, id: Option<Value>, request_id: &str, body: Value) -> Self {
        Self {
            caller,
            id,
            request_id: request_id.into(),
            body,
        }
    }

    /// Parses a client frame. The request and the frame's `client_msg_id` (for echoing) come
    /// back even when the frame is invalid: then with the error to answer.
    pub fn parse(
        caller: Caller,
        request_id: String,
        frame: Frame<'_>,
    ) -> (Self, Option<String>, Result<(), Error>) {
        let (id, client_msg_id, body) = split(frame);
        let (body, parsed) = match body {
            Ok(body) => (body, Ok(())),
            Err(e) => (Value::Null, Err(e)),
        };
        let req = Self {
            caller,
            id,
            request_id,
            body,
        };
        (req, client_msg_id, parsed)
    }

    /// The frame as the action's type; a wrong type or missing field is a `bad_request`.
    pub fn frame<T: DeserializeOwned>(&self) -> Result<T, Error> {
        T::deserialize(&self.body).map_err(|e| Error::BadRequest(e.to_string()))
    }

    /// The frame's `action`, when it has a string one.
    pub fn action(&self) -> Option<&str> {
        self.body.get("action").and_then(Value::as_str)
    }

    /// Answers this request.
    pub async fn reply(&self, app: &App, frame: &ServerFrame) {
        app.reply(&self.caller.connection, self.id.as_ref(), frame)
            .await;
    }
}

/// Splits a frame into (request id, client_msg_id, body). The ids are recovered even when the
/// rest of the frame is invalid, so the error can echo them.
fn split(frame: Frame<'_>) -> (Option<Value>, Option<String>, Result<Value, Error>) {
    let body: Value = match frame {
        Frame::Json(v) => v,
        Frame::Text(text) => match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                let e = Error::BadRequest(format!("malformed JSON: {e}"));
                return (None, None, Err(e));
            }
        },
        Frame::Binary => {
            let e = Error::BadRequest("binary frames are not supported; send JSON text".into());
            return (None, None, Err(e));
        }
    };
    if !body.is_object() {
        let e = Error::BadRequest("a frame must be a JSON object".into());
        return (None, None, Err(e));
    }
    let client_msg_id = body
        .get("client_msg_id")
        .and_then(Value::as_str)
        .map(|s| first_chars(s, MAX_REQUEST_ID_LEN).to_owned());
    let id = match body.get("id") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Number(_)) => Some(v.clone()),
        Some(Value::String(s)) if s.len() <= MAX_REQUEST_ID_LEN => Some(Value::String(s.clone())),
        Some(_) => {
            let e = Error::BadRequest(
                "\"id\" must be a string of at most 128 bytes or a number".into(),
            );
            return (None, client_msg_id, Err(e));
        }
    };
    (id, client_msg_id, Ok(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_recovered_from_a_frame_that_is_otherwise_invalid() {
        let (id, cmid, body) = split(Frame::Text(
            r#"{"action":"send","id":"r-1","client_msg_id":"c-1"}"#,
        ));
        assert_eq!(id, Some(Value::from("r-1")));
        assert_eq!(cmid.as_deref(), Some("c-1"));
        assert_eq!(body.unwrap()["action"], "send");
        let (id, cmid, body) = split(Frame::Text(r#"{"id":{"x":1},"client_msg_id":"c-2"}"#));
        assert_eq!((id, cmid.as_deref()), (None, Some("c-2")));
        assert!(matches!(body, Err(Error::BadRequest(_))));
        assert!(matches!(split(Frame::Binary).2, Err(Error::BadRequest(_))));
        // Parsed already, the same frame splits the same way.
        let text = r#"{"action":"send","id":7,"client_msg_id":"c-3"}"#;
        let (id, cmid, body) = split(Frame::Json(serde_json::from_str(text).unwrap()));
        assert_eq!((id, cmid), (Some(Value::from(7)), Some("c-3".into())));
        assert_eq!(body.unwrap(), split(Frame::Text(text)).2.unwrap());
        let not_an_object = split(Frame::Json(serde_json::json!([1]))).2;
        assert!(matches!(not_an_object, Err(Error::BadRequest(_))));
        assert!(matches!(
            split(Frame::Text("[1]")).2,
            Err(Error::BadRequest(_))
        ));
    }

    #[test]
    fn an_echoed_client_msg_id_is_cut_to_128_chars() {
        let echo = |cmid: &str| {
            let frame = serde_json::json!({"action": "send", "client_msg_id": cmid}).to_string();
            split(Frame::Text(&frame)).1.unwrap()
        };
        assert_eq!(echo("c-1"), "c-1");
        assert_eq!(echo(&"x".repeat(128)), "x".repeat(128));
        assert_eq!(echo(&"x".repeat(129)), "x".repeat(128));
        // Chars, not bytes: 40 three-byte chars (120 bytes) fit, 200 are cut at the 128th.
        assert_eq!(echo(&"€".repeat(40)), "€".repeat(40));
        assert_eq!(echo(&"€".repeat(200)), "€".repeat(128));
        assert_eq!(echo(&"€".repeat(128)), "€".repeat(128));
    }
}
