//! openraft's network over tonic: one cached, lazily connected channel per peer address,
//! opened by the node's [`Dialer`] (mutual TLS, the link's faults), and a deadline on
//! every RPC.
//!
//! AppendEntries (entries and heartbeats) goes down one stream per peer, kept open from
//! call to call: a unary call cost its own headers, trailers and server task each time,
//! which at 50 nodes was half the CPU of a write. Vote and InstallSnapshot stay unary.
//! Requests and responses travel as JSON inside `RaftPayload`. A peer that cannot be
//! reached answers `Unreachable`, which makes openraft back off instead of retrying in a
//! tight loop; an error raised by the peer's Raft comes back as a `RemoteError`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::BasicNode;
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::transport::Channel;

use super::{NodeId, TypeConfig};
use crate::link::Dialer;
use crate::wire::proto::raft::RaftPayload;
use crate::wire::proto::raft::raft_client::RaftClient;

/// How long a connection attempt to a peer may take before the peer counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// The largest message a peer accepts: snapshots travel in one piece, and tonic's default
/// of 4 MiB would refuse a large configuration's snapshot.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Creates connections to peers, sharing one channel per address.
#[derive(Clone)]
pub struct Network {
    dialer: Dialer,
    channels: Arc<Mutex<HashMap<String, Channel>>>,
}

impl Network {
    pub fn new(dialer: Dialer) -> Network {
        Network {
            dialer,
            channels: Arc::default(),
        }
    }

    fn channel(&self, addr: &str) -> Result<Channel, String> {
        // A std Mutex: nothing awaits while it is held.
        let mut channels = self.channels.lock().expect("channel cache lock poisoned");
        if let Some(channel) = channels.get(addr) {
            return Ok(channel.clone());
        }
        let socket = addr
            .parse()
            .map_err(|e| format!("peer address {addr:?} is not ip:port: {e}"))?;
        let channel = self.dialer.channel(socket, CONNECT_TIMEOUT);
        channels.insert(addr.to_owned(), channel.clone());
        Ok(channel)
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Peer {
        Peer {
            target,
            channel: self.channel(&node.addr),
            stream: None,
        }
    }
}

/// A connection to one peer.
pub struct Peer {
    target: NodeId,
    /// The channel, or why the peer's address is unusable.
    channel: Result<Channel, String>,
    /// The AppendEntries stream to the peer, while no call is using it; a call that does
    /// not end with its answer read drops it, and the next call opens another.
    stream: Option<AppendStream>,
}

/// An open `AppendStream` call: requests go in, one answer each comes back in order.
struct AppendStream {
    requests: tokio::sync::mpsc::Sender<RaftPayload>,
    answers: tonic::Streaming<RaftPayload>,
}

/// Which RPC of the `Raft` service to call.
#[derive(Clone, Copy)]
enum Rpc {
    Vote,
    InstallSnapshot,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct TransportError(String);

impl Peer {
    /// Opens an AppendEntries stream to the peer.
    async fn open_stream(&self) -> Result<AppendStream, tonic::Status> {
        let channel = self.channel.clone().map_err(tonic::Status::unavailable)?;
        let mut client = RaftClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let (requests, outgoing) = tokio::sync::mpsc::channel(1);
        let outgoing = tokio_stream::wrappers::ReceiverStream::new(outgoing);
        let answers = client.append_stream(outgoing).await?.into_inner();
        Ok(AppendStream { requests, answers })
    }

    /// Sends `request` down the AppendEntries stream and waits for its answer. The stream
    /// is kept only once the answer is read: a call that fails, or is dropped by a
    /// timeout (openraft's own or ours), leaves no stream behind whose next answer would
    /// be this request's.
    async fn append(
        &mut self,
        request: &AppendEntriesRequest<TypeConfig>,
    ) -> Result<RaftPayload, tonic::Status> {
        let payload = RaftPayload {
            json: serde_json::to_vec(request).expect("Raft requests serialize to JSON"),
        };
        let mut stream = match self.stream.take() {
            Some(stream) => stream,
            None => self.open_stream().await?,
        };
        stream
            .requests
            .send(payload)
            .await
            .map_err(|_| tonic::Status::unavailable("the AppendEntries stream closed"))?;
        let answer = stream
            .answers
            .message()
            .await?
            .ok_or_else(|| tonic::Status::unavailable("the peer ended the AppendEntries stream"))?;
        self.stream = Some(stream);
        Ok(answer)
    }

    async fn call<Req, Resp, E>(
        &self,
        rpc: Rpc,
        request: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let channel = self
            .channel
            .clone()
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&TransportError(e))))?;
        let mut client = RaftClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let payload = RaftPayload {
            json: serde_json::to_vec(request).expect("Raft requests serialize to JSON"),
        };
        let mut request = tonic::Request::new(payload);
        request.set_timeout(option.hard_ttl());
        let response = match rpc {
            Rpc::Vote => client.vote(request).await,
            Rpc::InstallSnapshot => client.install_snapshot(request).await,
        };
        let payload = response.map_err(status_to_rpc_error)?.into_inner();
        let answer: Result<Resp, E> =
            serde_json::from_slice(&payload.json).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

fn status_to_rpc_error<E: std::error::Error>(status: tonic::Status) -> RPCError<NodeId, BasicNode, E> {
    match status.code() {
        // The peer is down, restarting, or its Raft is shut down: back off. A connection
        // reset in the middle of a call arrives as `Unknown`.
        tonic::Code::Unavailable
        | tonic::Code::Cancelled
        | tonic::Code::DeadlineExceeded
        | tonic::Code::Unknown => RPCError::Unreachable(Unreachable::new(&status)),
        _ => RPCError::Network(NetworkError::new(&status)),
    }
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        // openraft times the call out at the hard deadline itself; ours, at the soft one,
        // normally comes first and says so.
        let answer = match tokio::time::timeout(option.soft_ttl(), self.append(&rpc)).await {
            Ok(Ok(payload)) => payload,
            Ok(Err(status)) => return Err(status_to_rpc_error(status)),
            Err(_) => {
                let status = tonic::Status::deadline_exceeded("the peer did not answer in time");
                return Err(status_to_rpc_error(status));
            }
        };
        let answer: Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>> =
            serde_json::from_slice(&answer.json).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call(Rpc::InstallSnapshot, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(Rpc::Vote, &rpc, &option).await
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;

    use futures::StreamExt as _;
    use openraft::Vote;
    use tonic::{Request, Response, Status, Streaming};

    use super::*;
    use crate::wire::proto::raft::raft_server::{Raft, RaftServer};

    /// A peer that answers each AppendEntries with a higher vote naming the request's term,
    /// so an answer tells which request it is for; term 1 it answers only after a second.
    struct Echo;

    type Answers = Pin<Box<dyn tokio_stream::Stream<Item = Result<RaftPayload, Status>> + Send>>;

    #[tonic::async_trait]
    impl Raft for Echo {
        type AppendStreamStream = Answers;

        async fn append_stream(
            &self,
            request: Request<Streaming<RaftPayload>>,
        ) -> Result<Response<Answers>, Status> {
            let answers = request.into_inner().then(|payload| async move {
                let rpc: AppendEntriesRequest<TypeConfig> = serde_json::from_slice(&payload?.json).unwrap();
                if rpc.vote.leader_id().term == 1 {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                let answer: Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>> =
                    Ok(AppendEntriesResponse::HigherVote(rpc.vote));
                Ok(RaftPayload {
                    json: serde_json::to_vec(&answer).unwrap(),
                })
            });
            Ok(Response::new(Box::pin(answers)))
        }

        async fn vote(&self, _: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
            Err(Status::unimplemented("not in this test"))
        }

        async fn install_snapshot(&self, _: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
            Err(Status::unimplemented("not in this test"))
        }
    }

    fn request(term: u64) -> AppendEntriesRequest<TypeConfig> {
        AppendEntriesRequest {
            vote: Vote::new_committed(term, 1),
            prev_log_id: None,
            entries: Vec::new(),
            leader_commit: None,
        }
    }

    /// A call dropped before its answer came (openraft times calls out itself) must not
    /// leave that answer for the next call to take as its own.
    #[tokio::test]
    async fn a_call_dropped_midway_does_not_hand_its_answer_to_the_next() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(RaftServer::new(Echo))
                .serve_with_incoming(incoming),
        );
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_lazy();
        let mut peer = Peer {
            target: 2,
            channel: Ok(channel),
            stream: None,
        };
        let option = RPCOption::new(Duration::from_secs(5));
        let dropped = tokio::time::timeout(
            Duration::from_millis(200),
            peer.append_entries(request(1), option.clone()),
        );
        assert!(dropped.await.is_err(), "term 1 is answered only after a second");
        let answer = peer.append_entries(request(2), option).await.expect("an answer");
        assert_eq!(
            answer,
            AppendEntriesResponse::HigherVote(Vote::new_committed(2, 1))
        );
    }
}
