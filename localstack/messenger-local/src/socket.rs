//! One WebSocket after its handshake: frames in (each invokes its route), frames out (what
//! the handlers posted, in order), the idle and maximum-duration timeouts, and the close.
//!
//! A client that stops reading cannot pin its task: every write has a timeout, and a post that
//! overflows the socket's queue closes it at once (the registry's slow-consumer close wakes
//! the task even in the middle of a write). The timers run whatever the client does.

use crate::events::{Body, ConnectionContext};
use crate::gateway::Gateway;
use crate::registry::{Entry, Outbound};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use chrono::Utc;
use futures_util::SinkExt;
use messenger::request::Caller;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How a socket's end is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Goodbye {
    /// Our close frame (code and reason), then the close.
    CloseFrame,
    /// The client closed: only flush the reply the WebSocket layer queued.
    CompleteClientClose,
    /// The socket cannot take a frame: just drop it.
    Drop,
}

/// Why a write did not complete.
enum WriteFailed {
    /// The socket is broken.
    Broken,
    /// The client did not take the frame within the write timeout.
    TimedOut,
    /// The gateway closed the socket meanwhile (slow consumer, shutdown).
    Closed(u16, &'static str),
}

/// Most frames written with one flush: what was queued when the socket task woke, up to this.
const WRITE_BATCH: usize = 64;

/// What the socket task took off its queue at once: frames to write with one flush, and
/// whether a close was queued behind them.
struct Batch {
    frames: Vec<Message>,
    /// What the frames count against the queue's bound.
    cost: usize,
    close: Option<(u16, &'static str)>,
}

impl Batch {
    /// `first`, then whatever else is queued already (up to [`WRITE_BATCH`] frames, stopping
    /// at a close): frames posted while the socket task was busy go out in one write.
    fn take(first: Outbound, rx: &mut mpsc::UnboundedReceiver<Outbound>) -> Self {
        let mut batch = Self {
            frames: Vec::new(),
            cost: 0,
            close: None,
        };
        let mut next = Some(first);
        while let Some(out) = next.take() {
            batch.cost += out.cost();
            match out {
                Outbound::Text(t) => batch.frames.push(Message::Text(Utf8Bytes::from(t))),
                Outbound::Binary(b) => batch.frames.push(Message::Binary(b.into())),
                Outbound::Close(code, reason) => {
                    batch.close = Some((code, reason));
                    break;
                }
            }
            if batch.frames.len() < WRITE_BATCH {
                next = rx.try_recv().ok();
            }
        }
        batch
    }
}

/// Writes frames with one flush, giving up after `timeout` or when the gateway closes the
/// socket (`closed`) meanwhile.
async fn write(
    socket: &mut WebSocket,
    closed: Pin<&mut impl Future<Output = (u16, &'static str)>>,
    frames: Vec<Message>,
    timeout: Duration,
) -> Result<(), WriteFailed> {
    let writing = async {
        for frame in frames {
            socket.feed(frame).await?;
        }
        socket.flush().await
    };
    tokio::select! {
        written = tokio::time::timeout(timeout, writing) => match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(WriteFailed::Broken),
            Err(_) => Err(WriteFailed::TimedOut),
        },
        (code, reason) = closed => Err(WriteFailed::Closed(code, reason)),
    }
}

impl Gateway {
    /// Runs a socket until it closes, then forgets it and invokes `$disconnect`.
    pub(crate) async fn run_socket(
        self: Arc<Self>,
        ctx: ConnectionContext,
        caller: Caller,
        entry: Entry,
        mut rx: mpsc::UnboundedReceiver<Outbound>,
        mut socket: WebSocket,
    ) {
        let span = tracing::info_span!("socket", connection = %ctx.connection_id);
        let deadline = Instant::now() + self.config.max_connection_duration;
        let idle = self.config.idle_timeout;
        let write_timeout = self.config.write_timeout;
        // How the socket ends: with our close frame, by completing the client's close (its
        // reply is queued by the WebSocket layer), or not at all (it cannot take a frame).
        let mut goodbye = Goodbye::CloseFrame;
        // Both live as long as the loop: no future or timer is made anew per frame. The idle
        // timer fires at the earliest moment the socket can have been quiet for `idle`; it
        // then checks when the last frame was and, if there was one, waits again.
        let closed = entry.closing.closed();
        tokio::pin!(closed);
        let timer = tokio::time::sleep_until(deadline.min(Instant::now() + idle));
        tokio::pin!(timer);
        let (code, reason): (u16, &'static str) = loop {
            tokio::select! {
                why = &mut closed => break why,
                out = rx.recv() => {
                    let Some(out) = out else { break (1001, "Going away") };
                    let batch = Batch::take(out, &mut rx);
                    let written = match batch.frames.is_empty() {
                        true => Ok(()),
                        false => write(&mut socket, closed.as_mut(), batch.frames, write_timeout).await,
                    };
                    entry.released(batch.cost);
                    match written {
                        Ok(()) => {}
                        Err(WriteFailed::Broken) => {
                            goodbye = Goodbye::Drop;
                            break (1006, "send failed");
                        }
                        Err(WriteFailed::TimedOut) => {
                            goodbye = Goodbye::Drop;
                            break (1006, "Write timed out");
                        }
                        Err(WriteFailed::Closed(code, reason)) => break (code, reason),
                    }
                    if let Some(why) = batch.close {
                        break why;
                    }
                }
                incoming = socket.recv() => match incoming {
                    Some(Ok(Message::Text(t))) => {
                        entry.touch();
                        self.dispatch(&caller, &entry, Body::Text(t.to_string())).await;
                    }
                    Some(Ok(Message::Binary(b))) => {
                        entry.touch();
                        self.dispatch(&caller, &entry, Body::Binary(b.to_vec())).await;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => entry.touch(),
                    Some(Ok(Message::Close(_))) | None => {
                        goodbye = Goodbye::CompleteClientClose;
                        break (1000, "Client closed");
                    }
                    Some(Err(e)) => {
                        if is_too_big(e) {
                            break (1009, "Message too big");
                        }
                        goodbye = Goodbye::CompleteClientClose;
                        break (1006, "Connection lost");
                    }
                },
                () = &mut timer => {
                    let now = Instant::now();
                    if now >= deadline {
                        break (1001, "Going away");
                    }
                    let quiet = (Utc::now() - entry.last_active()).to_std().unwrap_or_default();
                    if quiet >= idle {
                        break (1001, "Going away");
                    }
                    timer.as_mut().reset(deadline.min(now + (idle - quiet)));
                }
            }
        };
        self.registry.remove(&ctx.connection_id);
        // Frames still queued are dropped: their posts succeeded, as PostToConnection to a
        // socket that closes right after does on AWS (the log has the messages).
        rx.close();
        while let Ok(out) = rx.try_recv() {
            entry.dequeued(&out);
        }
        // `$disconnect` runs before the close handshake completes, so a client that has seen
        // its socket close knows the connection is forgotten. (AWS promises no order here;
        // nothing may depend on it but this emulator's own tests.)
        self.disconnect(&ctx, code, reason).await;
        // Bounded too: a slow reader gets the close frame if it drains its socket in time.
        let closing = async {
            if goodbye == Goodbye::CloseFrame {
                let frame = CloseFrame {
                    code,
                    reason: reason.into(),
                };
                let _ = socket.send(Message::Close(Some(frame))).await;
            }
            let _ = SinkExt::close(&mut socket).await;
        };
        if goodbye != Goodbye::Drop {
            let _ = tokio::time::timeout(write_timeout, closing).await;
        }
        tracing::info!(parent: &span, code, reason, "socket closed");
    }
}

fn is_too_big(e: axum::Error) -> bool {
    matches!(
        e.into_inner().downcast_ref::<tungstenite::Error>(),
        Some(tungstenite::Error::Capacity(_))
    )
}
