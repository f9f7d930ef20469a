//! AppendEntries on a connection of its own: mutual TLS as every fabric connection, with
//! [`Protocol::Raft`](crate::link::Protocol::Raft) agreed by ALPN, then frames, one
//! answer for each request, in order. As a gRPC stream, HTTP/2's framing, flow control
//! and the tasks on both sides took 12 % of a 50-node fabric's CPU; a frame costs one
//! write and one read each way.
//!
//! A frame is its body's length (4 bytes, big-endian), its kind (1 byte) and the body:
//! - a request: openraft's `AppendEntriesRequest`, as JSON;
//! - an answer: openraft's `Result<AppendEntriesResponse, RaftError>`, as JSON;
//! - a refusal: why, as text (the sender is not who it claims to be, a frame that does
//!   not parse); the server closes the connection after it.
//!
//! The leader opens one connection per peer and keeps it from call to call
//! ([`super::network`]); a call that ends without its answer drops the connection, so no
//! later call can take that answer for its own.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use openraft::error::RaftError;
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::{MAX_MESSAGE_BYTES, NodeId, TypeConfig};
use crate::link::{Dialer, FabricStream};

/// What a peer's Raft answers to one AppendEntries.
pub type Answer = Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>;

/// A frame's length and kind.
const HEADER: usize = 5;

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Request = 0,
    Answer = 1,
    Refusal = 2,
}

impl Kind {
    fn of(byte: u8) -> Option<Kind> {
        [Kind::Request, Kind::Answer, Kind::Refusal]
            .into_iter()
            .find(|kind| *kind as u8 == byte)
    }
}

/// Why a call on a Raft stream got no answer.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The peer turned the request away, and closed the connection.
    #[error("the peer refused the request: {0}")]
    Refused(String),
    /// The connection failed, or closed.
    #[error("the Raft stream failed: {0}")]
    Io(#[from] io::Error),
    /// A frame that does not follow this protocol.
    #[error("the Raft stream broke its protocol: {0}")]
    Protocol(String),
}

/// A leader's connection to one peer.
pub struct AppendConnection<S = FabricStream> {
    stream: S,
}

impl AppendConnection {
    /// Connects to the peer at `addr` through `dialer`: its links, its certificate.
    pub async fn open(dialer: &Dialer, addr: SocketAddr, connect_timeout: Duration) -> io::Result<Self> {
        Ok(AppendConnection {
            stream: dialer.open_raft(addr, connect_timeout).await?,
        })
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AppendConnection<S> {
    /// Sends `request` and reads the peer's answer to it.
    pub async fn append(
        &mut self,
        request: &AppendEntriesRequest<TypeConfig>,
    ) -> Result<Answer, StreamError> {
        write_frame(&mut self.stream, Kind::Request, &json(request)).await?;
        let (kind, body) = read_frame(&mut self.stream).await?;
        match kind {
            Kind::Answer => serde_json::from_slice(&body).map_err(|e| StreamError::Protocol(e.to_string())),
            Kind::Refusal => Err(StreamError::Refused(String::from_utf8_lossy(&body).into_owned())),
            Kind::Request => Err(StreamError::Protocol("the peer sent a request".to_owned())),
        }
    }
}

/// Answers the requests that arrive on `stream`, each with what `handle` makes of it,
/// until the client closes it, `handle` refuses one (the refusal is sent first), or
/// `shutdown` is cancelled (a request then in hand goes unanswered).
pub async fn serve<S, F, Fut>(
    mut stream: S,
    shutdown: CancellationToken,
    mut handle: F,
) -> Result<(), StreamError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnMut(AppendEntriesRequest<TypeConfig>) -> Fut,
    Fut: Future<Output = Result<Answer, String>>,
{
    loop {
        let frame = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            frame = read_frame(&mut stream) => frame,
        };
        let (kind, body) = match frame {
            Ok(frame) => frame,
            Err(StreamError::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        let request = match kind {
            Kind::Request => serde_json::from_slice(&body).map_err(|e| format!("bad AppendEntries: {e}")),
            kind => Err(format!("a {kind:?} frame where a request belongs")),
        };
        let answer = match request {
            Ok(request) => tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                answer = handle(request) => answer,
            },
            Err(refusal) => Err(refusal),
        };
        match answer {
            Ok(answer) => write_frame(&mut stream, Kind::Answer, &json(&answer)).await?,
            Err(refusal) => return refuse(&mut stream, refusal).await,
        }
    }
}

async fn refuse<S: AsyncWrite + Unpin>(stream: &mut S, refusal: String) -> Result<(), StreamError> {
    write_frame(stream, Kind::Refusal, refusal.as_bytes()).await?;
    stream.shutdown().await?;
    Err(StreamError::Refused(refusal))
}

fn json(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(value).expect("Raft messages serialize to JSON")
}

async fn write_frame<S: AsyncWrite + Unpin>(
    stream: &mut S,
    kind: Kind,
    body: &[u8],
) -> Result<(), StreamError> {
    let length = u32::try_from(body.len())
        .ok()
        .filter(|length| *length as usize <= MAX_MESSAGE_BYTES)
        .ok_or_else(|| StreamError::Protocol(format!("a {}-byte message is too large", body.len())))?;
    // One buffer, so the frame leaves in one TLS record and one write where it fits.
    let mut frame = Vec::with_capacity(HEADER + body.len());
    frame.extend_from_slice(&length.to_be_bytes());
    frame.push(kind as u8);
    frame.extend_from_slice(body);
    stream.write_all(&frame).await?;
    stream.flush().await?;
    Ok(())
}

async fn read_frame<S: AsyncRead + Unpin>(stream: &mut S) -> Result<(Kind, Vec<u8>), StreamError> {
    let mut header = [0; HEADER];
    stream.read_exact(&mut header).await?;
    let [a, b, c, d, kind] = header;
    let length = u32::from_be_bytes([a, b, c, d]) as usize;
    if length > MAX_MESSAGE_BYTES {
        return Err(StreamError::Protocol(format!(
            "a frame of {length} bytes is too large"
        )));
    }
    let kind = Kind::of(kind).ok_or_else(|| StreamError::Protocol(format!("unknown frame kind {kind}")))?;
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await?;
    Ok((kind, body))
}

/// An empty AppendEntries from node 1 in `term`, which a test's peer can echo back to
/// tell which request it answers.
#[cfg(test)]
pub(super) fn request(term: u64) -> AppendEntriesRequest<TypeConfig> {
    AppendEntriesRequest {
        vote: openraft::Vote::new_committed(term, 1),
        prev_log_id: None,
        entries: Vec::new(),
        leader_commit: None,
    }
}

#[cfg(test)]
mod tests {
    use openraft::Vote;

    use super::*;

    /// Serves one end of an in-memory pipe: term 0 is refused, every other request is
    /// answered with a higher vote naming its term.
    fn serve_echo() -> AppendConnection<tokio::io::DuplexStream> {
        let (client, server) = tokio::io::duplex(64 * 1024);
        tokio::spawn(serve(server, CancellationToken::new(), |rpc| async move {
            match rpc.vote.leader_id().term {
                0 => Err("term 0 is not a leader's".to_owned()),
                _ => Ok(Ok(AppendEntriesResponse::HigherVote(rpc.vote))),
            }
        }));
        AppendConnection { stream: client }
    }

    #[tokio::test]
    async fn each_request_gets_its_own_answer_in_order() {
        let mut connection = serve_echo();
        for term in 1..=3 {
            let answer = connection.append(&request(term)).await.expect("an answer");
            assert_eq!(
                answer,
                Ok(AppendEntriesResponse::HigherVote(Vote::new_committed(term, 1)))
            );
        }
    }

    #[tokio::test]
    async fn a_refusal_says_why_and_ends_the_connection() {
        let mut connection = serve_echo();
        let refused = connection
            .append(&request(0))
            .await
            .expect_err("term 0 is refused");
        assert!(
            matches!(&refused, StreamError::Refused(why) if why == "term 0 is not a leader's"),
            "{refused:?}"
        );
        let after = connection
            .append(&request(1))
            .await
            .expect_err("the connection is closed");
        assert!(matches!(after, StreamError::Io(_)), "{after:?}");
    }

    /// A stopping server does not wait for an answer its Raft is still working out.
    #[tokio::test]
    async fn a_shutdown_ends_the_connection_even_mid_request() {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let shutdown = CancellationToken::new();
        let in_hand = std::sync::Arc::new(tokio::sync::Notify::new());
        let handle = {
            let in_hand = in_hand.clone();
            move |_| {
                in_hand.notify_one();
                std::future::pending()
            }
        };
        let served = tokio::spawn(serve(server, shutdown.clone(), handle));
        let mut connection = AppendConnection { stream: client };
        let asked = tokio::spawn(async move { connection.append(&request(1)).await });
        in_hand.notified().await;
        shutdown.cancel();
        let stopped = tokio::time::timeout(std::time::Duration::from_secs(10), served).await;
        stopped
            .expect("the connection ends")
            .unwrap()
            .expect("a clean stop");
        let unanswered = asked.await.unwrap();
        assert!(matches!(unanswered, Err(StreamError::Io(_))), "{unanswered:?}");
    }

    #[tokio::test]
    async fn a_frame_of_another_protocol_is_refused() {
        let (mut client, server) = tokio::io::duplex(1024);
        let served = tokio::spawn(serve(server, CancellationToken::new(), |_| async {
            Ok(Ok(AppendEntriesResponse::Success))
        }));
        client
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .unwrap();
        let outcome = served.await.unwrap();
        assert!(matches!(outcome, Err(StreamError::Protocol(_))), "{outcome:?}");
    }
}
