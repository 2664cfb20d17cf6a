//! One connection: read requests, play their behaviours.

use std::io;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use serde_json::Value;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

use crate::behaviour::{Behaviour, Fault, Reply, StatusReply};
use crate::http::{self, ReadError, Request, Writer};
use crate::record::Outcome;
use crate::render::{self, choice, ChatParams, ChunkHeader, Completion, Delta, UsageOut};
use crate::Shared;

const JSON: &str = "application/json";
/// What a corrupted chunk looks like: the start of a chunk, cut off.
const MALFORMED: &[u8] = br#"{"id":"chatcmpl-fake","object":"chat.completion.chunk","choices":[{"#;

/// How a played behaviour left the connection.
enum End {
    /// Ready for the next request.
    KeepAlive,
    /// To be closed now (abruptly, as far as the client can tell).
    Close,
    /// The client closed it first.
    ClientGone,
}

pub(crate) async fn serve_connection(mut stream: TcpStream, shared: Arc<Shared>, connection: u64) {
    // Paced chunks must leave as soon as they are written, not wait for
    // Nagle's algorithm to batch them.
    let _ = stream.set_nodelay(true);
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let mut out = Vec::with_capacity(8 * 1024);
    let mut events = Vec::with_capacity(8 * 1024);
    loop {
        let request = match http::read_request(&mut stream, &mut buf).await {
            Ok(Some(request)) => request,
            Ok(None) | Err(ReadError::Broken) => return,
            Err(ReadError::Malformed(why)) => {
                out.clear();
                let body = render::error_body(why, "invalid_request_error", None);
                http::write_full(&mut out, 400, JSON, &[], &body);
                let _ = stream.write_all(&out).await;
                return;
            }
        };
        let close_requested = request.close;
        let mut writer = Writer {
            stream: &mut stream,
            out: &mut out,
            events: &mut events,
        };
        let keep_alive = handle(&mut writer, &shared, connection, request).await;
        if !keep_alive || close_requested {
            return;
        }
        out.clear();
        events.clear();
    }
}

/// Answers one request; says whether the connection may serve another.
async fn handle(
    writer: &mut Writer<'_>,
    shared: &Shared,
    connection: u64,
    request: Request,
) -> bool {
    let body: Option<Value> = serde_json::from_slice(&request.body).ok();
    let route =
        request.method == "POST" && request.path.split('?').next() == Some("/v1/chat/completions");
    let params = body.as_ref().filter(|_| route).map(ChatParams::from_body);
    let (seq, behaviour) = shared.admit(
        connection,
        request,
        body.unwrap_or(Value::Null),
        params.is_some(),
    );
    let played = match (&params, behaviour) {
        (Some(params), Some(behaviour)) => play(writer, &behaviour, params, seq).await,
        _ => refuse(writer, route).await,
    };
    let (outcome, keep_alive) = match played {
        Ok(End::KeepAlive) => (Outcome::Served, true),
        Ok(End::Close) => (Outcome::Served, false),
        Ok(End::ClientGone) | Err(_) => (Outcome::ClientGone, false),
    };
    shared.finish(seq, outcome);
    keep_alive
}

/// Answers a request that is not a chat completion with a JSON body.
async fn refuse(writer: &mut Writer<'_>, route: bool) -> io::Result<End> {
    let (status, message) = if route {
        (400, "We could not parse the JSON body of your request.")
    } else {
        (
            404,
            "Unknown request URL: the fake serves only POST /v1/chat/completions.",
        )
    };
    let body = render::error_body(message, "invalid_request_error", None);
    http::write_full(writer.out, status, JSON, &[], &body);
    writer.flush().await?;
    Ok(End::KeepAlive)
}

async fn play(
    writer: &mut Writer<'_>,
    behaviour: &Behaviour,
    params: &ChatParams,
    seq: u64,
) -> io::Result<End> {
    match behaviour {
        Behaviour::Hangup => Ok(End::Close),
        Behaviour::Status(status) => answer_status(writer, status).await,
        Behaviour::Reply(reply) if params.stream => stream_reply(writer, reply, params, seq).await,
        Behaviour::Reply(reply) => complete_reply(writer, reply, params, seq).await,
    }
}

async fn answer_status(writer: &mut Writer<'_>, status: &StatusReply) -> io::Result<End> {
    writer.pause(status.delay).await?;
    match &status.raw_body {
        Some((content_type, body)) => {
            http::write_full(
                writer.out,
                status.status,
                content_type,
                &status.headers,
                body.as_bytes(),
            );
        }
        None => {
            let body =
                render::error_body(&status.message, &status.error_type, status.code.as_deref());
            http::write_full(writer.out, status.status, JSON, &status.headers, &body);
        }
    }
    writer.flush().await?;
    Ok(End::KeepAlive)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn stream_reply(
    writer: &mut Writer<'_>,
    reply: &Reply,
    params: &ChatParams,
    seq: u64,
) -> io::Result<End> {
    let text = render::reply_text(reply, params);
    let mut steps = render::steps(reply, &text);
    let cut = render::limit(&mut steps, params);
    let id = format!("chatcmpl-fake-{seq}");
    let header = ChunkHeader {
        id: &id,
        created: unix_now(),
        model: &params.model,
    };
    // A fault set after more chunks than the reply has strikes after the
    // last one, before the finish chunk.
    let fault_at = reply
        .fault
        .as_ref()
        .and_then(Fault::after)
        .map(|k| k.min(steps.len()));

    writer.pause(reply.headers_delay).await?;
    http::write_head(
        writer.out,
        200,
        &[
            ("content-type", "text/event-stream"),
            ("cache-control", "no-cache"),
            ("transfer-encoding", "chunked"),
        ],
        &[],
    );
    let mut role_sent = false;
    for i in 0..=steps.len() {
        if i == 0 {
            writer.pause(reply.first_chunk_delay).await?;
        } else if i < steps.len() {
            writer.pause(reply.pace).await?;
        }
        if fault_at == Some(i) {
            match &reply.fault {
                Some(Fault::DropAfter(_)) => {
                    writer.flush().await?;
                    return Ok(End::Close);
                }
                Some(Fault::StallAfter(_)) => {
                    writer.flush().await?;
                    http::wait_for_close(writer.stream).await;
                    return Ok(End::ClientGone);
                }
                Some(Fault::MalformedAfter(_)) => writer.raw_event(MALFORMED),
                Some(Fault::ErrorAfter(_, object)) => {
                    writer.event(object);
                    writer.end_body();
                    writer.flush().await?;
                    return Ok(End::KeepAlive);
                }
                Some(Fault::EndWithoutFinish) | None => {}
            }
        }
        let Some(step) = steps.get(i) else { break };
        if !role_sent {
            writer.event(&header.chunk(&[choice(render::role_delta(), None)], None));
            role_sent = true;
        }
        writer.event(&header.chunk(&[choice(render::step_delta(step), None)], None));
    }
    if !role_sent {
        writer.event(&header.chunk(&[choice(render::role_delta(), None)], None));
    }
    if reply.fault != Some(Fault::EndWithoutFinish) {
        let finish_reason = render::finish_reason(reply, cut);
        writer.event(&header.chunk(&[choice(Delta::default(), Some(finish_reason))], None));
        if params.include_usage && !reply.omit_usage {
            writer.event(&header.chunk(&[], Some(UsageOut::new(params, steps.len()))));
        }
        if !reply.omit_done {
            writer.raw_event(b"[DONE]");
        }
    }
    writer.end_body();
    writer.flush().await?;
    Ok(End::KeepAlive)
}

async fn complete_reply(
    writer: &mut Writer<'_>,
    reply: &Reply,
    params: &ChatParams,
    seq: u64,
) -> io::Result<End> {
    writer
        .pause(reply.headers_delay + reply.first_chunk_delay)
        .await?;
    match &reply.fault {
        Some(Fault::DropAfter(_)) => return Ok(End::Close),
        Some(Fault::StallAfter(_)) => {
            http::wait_for_close(writer.stream).await;
            return Ok(End::ClientGone);
        }
        Some(Fault::MalformedAfter(_)) => {
            http::write_full(writer.out, 200, JSON, &[], MALFORMED);
            writer.flush().await?;
            return Ok(End::KeepAlive);
        }
        Some(Fault::ErrorAfter(_, object)) => {
            http::write_full(writer.out, 200, JSON, &[], object.to_string().as_bytes());
            writer.flush().await?;
            return Ok(End::KeepAlive);
        }
        Some(Fault::EndWithoutFinish) | None => {}
    }
    let text = render::reply_text(reply, params);
    let mut steps = render::steps(reply, &text);
    let cut = render::limit(&mut steps, params);
    let id = format!("chatcmpl-fake-{seq}");
    let header = ChunkHeader {
        id: &id,
        created: unix_now(),
        model: &params.model,
    };
    let finish_reason =
        (reply.fault != Some(Fault::EndWithoutFinish)).then(|| render::finish_reason(reply, cut));
    let completion = Completion::new(
        &header,
        &steps,
        finish_reason,
        UsageOut::new(params, steps.len()),
    );
    // The events buffer is free in a non-streamed answer: use it for the body.
    let _ = serde_json::to_writer(&mut *writer.events, &completion);
    http::write_full(writer.out, 200, JSON, &[], writer.events);
    writer.events.clear();
    writer.flush().await?;
    Ok(End::KeepAlive)
}
