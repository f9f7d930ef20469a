//! openraft's network: every connection opened by the node's [`Dialer`] (mutual TLS, the
//! link's faults), and a deadline on every RPC.
//!
//! AppendEntries (entries and heartbeats) goes down one [`AppendConnection`] per peer,
//! kept open from call to call ([`super::append`]): as a unary gRPC call it cost its own
//! headers, trailers and server task each time, which at 50 nodes was half the CPU of a
//! write, and as a gRPC stream HTTP/2 still cost an eighth. Vote and InstallSnapshot,
//! rare, are unary gRPC calls on one cached, lazily connected channel per peer address,
//! their requests and responses JSON inside `RaftPayload`. A peer that cannot be reached
//! answers `Unreachable`, which makes openraft back off instead of retrying in a tight
//! loop; an error raised by the peer's Raft comes back as a `RemoteError`.

use std::collections::HashMap;
use std::net::SocketAddr;
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

use super::append::{Answer, AppendConnection, StreamError};
use super::{MAX_MESSAGE_BYTES, NodeId, TypeConfig};
use crate::link::Dialer;
use crate::wire::proto::raft::RaftPayload;
use crate::wire::proto::raft::raft_client::RaftClient;

/// How long a connection attempt to a peer may take before the peer counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Creates connections to peers, sharing one channel per address.
#[derive(Clone)]
pub struct Network {
    dialer: Dialer,
    channels: Arc<Mutex<HashMap<SocketAddr, Channel>>>,
}

impl Network {
    pub fn new(dialer: Dialer) -> Network {
        Network {
            dialer,
            channels: Arc::default(),
        }
    }

    fn channel(&self, addr: SocketAddr) -> Channel {
        // A std Mutex: nothing awaits while it is held.
        let mut channels = self.channels.lock().expect("channel cache lock poisoned");
        let channel = channels
            .entry(addr)
            .or_insert_with(|| self.dialer.channel(addr, CONNECT_TIMEOUT));
        channel.clone()
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Peer {
        let addr = node
            .addr
            .parse()
            .map_err(|e| format!("peer address {:?} is not ip:port: {e}", node.addr));
        Peer {
            target,
            channel: addr.clone().map(|addr| self.channel(addr)),
            addr,
            dialer: self.dialer.clone(),
            stream: None,
        }
    }
}

/// A connection to one peer.
pub struct Peer {
    target: NodeId,
    /// The peer's address, or why it is unusable.
    addr: Result<SocketAddr, String>,
    dialer: Dialer,
    /// The channel for votes and snapshots.
    channel: Result<Channel, String>,
    /// The AppendEntries connection to the peer, while no call is using it; a call that
    /// does not end with its answer read drops it, and the next call opens another.
    stream: Option<AppendConnection>,
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

/// Why an AppendEntries call got no answer.
enum Failure {
    /// The peer is down, restarting, cut off, or slow: openraft backs off.
    Unreachable(String),
    /// The peer refused the call, or broke the protocol.
    Network(String),
}

impl Peer {
    /// Sends `request` down the AppendEntries connection and waits for its answer. The
    /// connection is kept only once the answer is read: a call that fails, or is dropped
    /// by a timeout (openraft's own or ours), leaves no connection behind whose next
    /// answer would be this request's.
    async fn append(&mut self, request: &AppendEntriesRequest<TypeConfig>) -> Result<Answer, Failure> {
        let mut stream = match self.stream.take() {
            Some(stream) => stream,
            None => {
                let addr = self.addr.clone().map_err(Failure::Unreachable)?;
                AppendConnection::open(&self.dialer, addr, CONNECT_TIMEOUT)
                    .await
                    .map_err(|e| Failure::Unreachable(format!("no connection to {addr}: {e}")))?
            }
        };
        let answer = stream.append(request).await.map_err(|e| match e {
            StreamError::Io(_) => Failure::Unreachable(e.to_string()),
            StreamError::Refused(_) | StreamError::Protocol(_) => Failure::Network(e.to_string()),
        })?;
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
            Ok(Ok(answer)) => answer,
            Ok(Err(Failure::Unreachable(why))) => {
                return Err(RPCError::Unreachable(Unreachable::new(&TransportError(why))));
            }
            Ok(Err(Failure::Network(why))) => {
                return Err(RPCError::Network(NetworkError::new(&TransportError(why))));
            }
            Err(_) => {
                let why = TransportError("the peer did not answer in time".to_owned());
                return Err(RPCError::Unreachable(Unreachable::new(&why)));
            }
        };
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
    use std::net::{IpAddr, Ipv4Addr};

    use futures::StreamExt as _;
    use openraft::Vote;
    use tokio_util::sync::CancellationToken;

    use super::super::append::{self, request};
    use super::*;
    use crate::link::{Links, Protocol, serve_tls};
    use crate::sim::pki::Pki;

    /// A call dropped before its answer came (openraft times calls out itself) must not
    /// leave that answer for the next call to take as its own. The peer, over the fabric's
    /// TLS, answers each AppendEntries with a higher vote naming the request's term, so an
    /// answer tells which request it is for; term 1 it answers only after a second.
    #[tokio::test]
    async fn a_call_dropped_midway_does_not_hand_its_answer_to_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let loopback = IpAddr::from(Ipv4Addr::LOCALHOST);
        let credentials = Pki::open(dir.path())
            .unwrap()
            .csf_credentials("peer", "FGT60FTK00000001", loopback)
            .unwrap();
        let listener = tokio::net::TcpListener::bind((loopback, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tls = credentials.server_config(&[Protocol::Raft]).unwrap();
        tokio::spawn(serve_tls(listener, tls, "peer".to_owned()).for_each_concurrent(
            None,
            |connection| async {
                let echo = |rpc: AppendEntriesRequest<TypeConfig>| async move {
                    if rpc.vote.leader_id().term == 1 {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    Ok(Ok(AppendEntriesResponse::HigherVote(rpc.vote)))
                };
                let _ = append::serve(connection.unwrap(), CancellationToken::new(), echo).await;
            },
        ));
        let dialer = Dialer::new(&credentials, Links::default()).unwrap();
        let mut peer = Peer {
            target: 2,
            addr: Ok(addr),
            channel: Ok(dialer.channel(addr, CONNECT_TIMEOUT)),
            dialer,
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
