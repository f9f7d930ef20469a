//! The server side of the node's gRPC services.

use std::pin::Pin;
use std::sync::Arc;

use futures::FutureExt as _;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use super::{ADMISSION, ADMISSION_DENIED, ADMISSION_PENDING, AUTHORIZATION};
use crate::cli::{Backend, Session};
use crate::link::{LinkChange, PeerIdentity, TlsConnection};
use crate::node::admission::JoinClaim;
use crate::node::{JoinError, Node};
use crate::raft::MAX_MESSAGE_BYTES;
use crate::raft::append;
use crate::sim::lab::{Lab, LabError};
use crate::wire::proto::fabric::admin_server::{Admin, AdminServer};
use crate::wire::proto::fabric::member_server::{Member, MemberServer};
use crate::wire::proto::fabric::sim_server::{Sim, SimServer};
use crate::wire::proto::fabric::{
    CliReply, CliRequest, JoinReply, JoinRequest, LinksReply, LinksRequest, NodeStatus, StatusRequest,
    cli_request,
};
use crate::wire::proto::fabric::{CloudCommand, EmsCommand, SimReply};
use crate::wire::proto::raft::RaftPayload;
use crate::wire::proto::raft::raft_server::{Raft, RaftServer};

/// The Raft service: votes and snapshots (AppendEntries comes by [`serve_append`]).
pub(super) fn raft_server(node: Node) -> RaftServer<RaftService> {
    RaftServer::new(RaftService { node })
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

pub(super) fn member_server(node: Node) -> MemberServer<MemberService> {
    MemberServer::new(MemberService { node })
}

pub(super) fn admin_server(
    node: Node,
) -> tonic::service::interceptor::InterceptedService<AdminServer<AdminService>, TokenCheck> {
    let check = TokenCheck::new(node.admin_token());
    AdminServer::with_interceptor(AdminService { node }, check)
}

pub(super) fn sim_server(
    lab: Arc<Lab>,
    token: &str,
) -> tonic::service::interceptor::InterceptedService<SimServer<SimService>, TokenCheck> {
    SimServer::with_interceptor(SimService { lab }, TokenCheck::new(token))
}

pub(super) struct SimService {
    lab: Arc<Lab>,
}

#[tonic::async_trait]
impl Sim for SimService {
    async fn ems(&self, request: Request<EmsCommand>) -> Result<Response<SimReply>, Status> {
        let command = request.into_inner();
        let output = self
            .lab
            .command(&command.ems, &command.action, &command.serial)
            .await
            .map_err(|e| match e {
                LabError::UnknownEms { .. }
                | LabError::UnknownAction { .. }
                | LabError::MissingSerial { .. }
                | LabError::BadSerial { .. }
                | LabError::Unlisted(_) => Status::invalid_argument(e.to_string()),
                _ => Status::internal(e.to_string()),
            })?;
        Ok(Response::new(SimReply { output }))
    }

    async fn cloud(&self, request: Request<CloudCommand>) -> Result<Response<SimReply>, Status> {
        let command = request.into_inner();
        let output = self
            .lab
            .cloud_command(&command.action, &command.serial)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        Ok(Response::new(SimReply { output }))
    }
}

/// Refuses admin calls without the state directory's token.
#[derive(Clone)]
pub(super) struct TokenCheck {
    expected: String,
}

impl TokenCheck {
    fn new(token: &str) -> TokenCheck {
        TokenCheck {
            expected: format!("Bearer {token}"),
        }
    }
}

impl tonic::service::Interceptor for TokenCheck {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let given = request
            .metadata()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if given == Some(self.expected.as_str()) {
            Ok(request)
        } else {
            Err(Status::unauthenticated(
                "missing or wrong admin token (see admin.token in the state directory)",
            ))
        }
    }
}

/// openraft's RPCs, handed to the node's Raft handle once the caller has shown it is the
/// node it claims to be.
pub(super) struct RaftService {
    node: Node,
}

/// Refuses a call whose TLS peer is not the fabric node `claimed` (a Raft node id or a
/// serial): its certificate's CN must be the serial the topology gives that node. The
/// refusal is logged with the reason.
fn check_peer<T>(node: &Node, request: &Request<T>, claimed: Claim<'_>) -> Result<(), Status> {
    check_identity(node, request.extensions().get::<PeerIdentity>(), claimed)
}

/// [`check_peer`] for the identity a connection showed.
fn check_identity(node: &Node, peer: Option<&PeerIdentity>, claimed: Claim<'_>) -> Result<(), Status> {
    let common_name = peer.map(|peer| peer.common_name.as_str());
    let expected = node.fabric_nodes().iter().find(|spec| match claimed {
        Claim::Id(id) => spec.id == id,
        Claim::Serial(serial) => spec.serial == serial,
    });
    let refusal = match (common_name, expected) {
        (None, _) => "the connection carries no verified certificate".to_owned(),
        (Some(_), None) => format!("it claims to be {claimed}, which is not a node of this fabric"),
        (Some(cn), Some(spec)) if cn != spec.serial => format!(
            "it claims to be {} (serial {}), but its certificate is for {cn:?}",
            spec.name, spec.serial
        ),
        (Some(_), Some(_)) => return Ok(()),
    };
    let peer = peer.map_or_else(String::new, |peer| peer.addr.to_string());
    tracing::warn!(
        node = node.name(),
        peer,
        reason = refusal,
        "refused a fabric call"
    );
    Err(Status::permission_denied(format!("refused: {refusal}")))
}

/// Who a caller says it is.
#[derive(Clone, Copy)]
enum Claim<'a> {
    Id(crate::raft::NodeId),
    Serial(&'a str),
}

impl std::fmt::Display for Claim<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Claim::Id(id) => write!(f, "node {id}"),
            Claim::Serial(serial) => write!(f, "serial {serial}"),
        }
    }
}

/// The node a Raft request comes from: the leader or candidate its vote names.
fn sender(vote: &openraft::Vote<crate::raft::NodeId>) -> Claim<'static> {
    Claim::Id(vote.leader_id().voted_for().unwrap_or_default())
}

fn decode<T: serde::de::DeserializeOwned>(payload: &RaftPayload) -> Result<T, Status> {
    serde_json::from_slice(&payload.json)
        .map_err(|e| Status::invalid_argument(format!("bad Raft payload: {e}")))
}

fn encode<T: serde::Serialize>(value: &T) -> Response<RaftPayload> {
    Response::new(RaftPayload {
        json: serde_json::to_vec(value).expect("Raft responses serialize to JSON"),
    })
}

/// Answers the AppendEntries requests of a leader's Raft connection, each once its
/// sender has shown it is the node it claims to be; the connection ends when `shutdown`
/// is cancelled, so a stopping server is not held open by a leader that keeps it.
pub(super) async fn serve_append(node: Node, connection: TlsConnection, shutdown: CancellationToken) {
    let peer = connection.peer().clone();
    let handle = |rpc: openraft::raft::AppendEntriesRequest<crate::raft::TypeConfig>| {
        let (node, peer) = (node.clone(), peer.clone());
        async move {
            check_identity(&node, Some(&peer), sender(&rpc.vote))
                .map_err(|status| status.message().to_owned())?;
            let answer = node.raft().append_entries(rpc).await;
            if answer.is_ok() {
                node.heard_from_leader();
            }
            Ok(answer)
        }
    };
    if let Err(error) = append::serve(connection, shutdown, handle).await {
        tracing::debug!(node = node.name(), peer = %peer.addr, %error, "a Raft connection ended");
    }
}

#[tonic::async_trait]
impl Raft for RaftService {
    async fn vote(&self, request: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        let rpc: openraft::raft::VoteRequest<crate::raft::NodeId> = decode(request.get_ref())?;
        check_peer(&self.node, &request, sender(&rpc.vote))?;
        Ok(encode(&self.node.raft().vote(rpc).await))
    }

    async fn install_snapshot(&self, request: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        let rpc: openraft::raft::InstallSnapshotRequest<crate::raft::TypeConfig> = decode(request.get_ref())?;
        check_peer(&self.node, &request, sender(&rpc.vote))?;
        let answer = self.node.raft().install_snapshot(rpc).await;
        if answer.is_ok() {
            self.node.heard_from_leader();
        }
        Ok(encode(&answer))
    }
}

pub(super) struct MemberService {
    node: Node,
}

impl From<JoinError> for Status {
    fn from(e: JoinError) -> Status {
        let refusal = |word: &str| {
            let mut status = Status::permission_denied(e.to_string());
            let value = word.parse().expect("an admission word is ASCII");
            status.metadata_mut().insert(ADMISSION, value);
            status
        };
        match &e {
            JoinError::NotRoot => Status::failed_precondition(e.to_string()),
            JoinError::NotLeader | JoinError::Membership(_) => Status::unavailable(e.to_string()),
            JoinError::Pending { .. } => refusal(ADMISSION_PENDING),
            JoinError::Denied { .. } => refusal(ADMISSION_DENIED),
            JoinError::UnknownMember { .. } => Status::invalid_argument(e.to_string()),
        }
    }
}

#[tonic::async_trait]
impl Member for MemberService {
    async fn join(&self, request: Request<JoinRequest>) -> Result<Response<JoinReply>, Status> {
        check_peer(&self.node, &request, Claim::Serial(&request.get_ref().serial))?;
        let join = request.into_inner();
        let claim = JoinClaim {
            id: join.node_id,
            name: join.name,
            serial: join.serial,
            addr: join.addr,
        };
        let voter = self.node.admit(claim).await?;
        Ok(Response::new(JoinReply { voter }))
    }
}

pub(super) struct AdminService {
    node: Node,
}

type CliStream = Pin<Box<dyn Stream<Item = Result<CliReply, Status>> + Send>>;

/// The most replies a CLI session holds back while lines that arrived with the first
/// run (a long pasted script still shows its progress), and the replies its stream
/// holds, so a batch is sent without waiting.
const MAX_HELD_REPLIES: usize = 16;

#[tonic::async_trait]
impl Admin for AdminService {
    type CliStream = CliStream;

    async fn cli(&self, request: Request<Streaming<CliRequest>>) -> Result<Response<CliStream>, Status> {
        let mut inbound = request.into_inner();
        let node = self.node.clone();
        let (reply_tx, reply_rx) = mpsc::channel(MAX_HELD_REPLIES);
        tokio::spawn(async move {
            let mut session = Session::new();
            while let Ok(Some(request)) = inbound.message().await {
                // Lines that arrived together (a pasted block) are answered together, once
                // the last of them has run: one write back instead of one per line.
                let mut replies = vec![answer(&mut session, &node, request).await];
                while replies.len() < MAX_HELD_REPLIES
                    && let Some(Ok(Some(request))) = inbound.message().now_or_never()
                {
                    replies.push(answer(&mut session, &node, request).await);
                }
                for reply in replies {
                    if reply_tx.send(Ok(reply)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(reply_rx))))
    }

    async fn status(&self, _request: Request<StatusRequest>) -> Result<Response<NodeStatus>, Status> {
        Ok(Response::new(self.node.status().into()))
    }

    async fn links(&self, request: Request<LinksRequest>) -> Result<Response<LinksReply>, Status> {
        let change = LinkChange::try_from(request.into_inner()).map_err(Status::invalid_argument)?;
        tracing::info!(node = self.node.name(), ?change, "link faults changed");
        let rules = self
            .node
            .links()
            .apply(change)
            .into_iter()
            .map(Into::into)
            .collect();
        Ok(Response::new(LinksReply { rules }))
    }
}

async fn answer(session: &mut Session, node: &Node, request: CliRequest) -> CliReply {
    let mut reply = CliReply::default();
    match request.kind() {
        cli_request::Kind::Line => {
            let result = session.execute(node, &request.line).await;
            reply.output = result.output;
            reply.failed = result.failed;
            reply.awaiting_answer = result.awaiting_answer;
            reply.revision = result.revision.unwrap_or(0);
        }
        cli_request::Kind::Complete => reply.completions = session.complete(node, &request.line),
        cli_request::Kind::Help => reply.output = session.help(node, &request.line),
    }
    reply.prompt = session.prompt(node.identity());
    reply
}

#[cfg(test)]
mod tests {
    use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed};

    use super::*;
    use crate::raft::{NodeId, TypeConfig};

    /// Bytes that look like a Raft payload: JSON pieces of the real messages' shapes.
    fn payload() -> impl Strategy<Value = Vec<u8>> {
        let piece = proptest::sample::select(
            &[
                "{",
                "}",
                "[",
                "]",
                ",",
                ":",
                "\"vote\"",
                "\"leader_id\"",
                "\"term\"",
                "\"node_id\"",
                "\"committed\"",
                "\"prev_log_id\"",
                "\"entries\"",
                "\"leader_commit\"",
                "\"log_id\"",
                "\"index\"",
                "\"payload\"",
                "\"Normal\"",
                "\"Blank\"",
                "\"Membership\"",
                "\"meta\"",
                "\"offset\"",
                "\"data\"",
                "\"done\"",
                "\"last_log_id\"",
                "null",
                "true",
                "0",
                "-1",
                "18446744073709551615",
                "18446744073709551616",
                "1e999",
                "\"\\ud800\"",
            ][..],
        );
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..256),
            proptest::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat().into_bytes()),
        ]
    }

    proptest! {
        #![proptest_config(Config {
            cases: 512,
            rng_seed: RngSeed::Fixed(0x4af7),
            failure_persistence: None,
            ..Config::default()
        })]

        #[test]
        fn a_raft_payload_decodes_or_is_refused_as_invalid(json in payload()) {
            let refused = |result: Result<(), Status>| match result {
                Ok(()) => true,
                Err(status) => status.code() == tonic::Code::InvalidArgument,
            };
            let append = decode::<AppendEntriesRequest<TypeConfig>>(&RaftPayload { json: json.clone() });
            prop_assert!(refused(append.map(drop)));
            let vote = decode::<VoteRequest<NodeId>>(&RaftPayload { json: json.clone() });
            prop_assert!(refused(vote.map(drop)));
            let snapshot = decode::<InstallSnapshotRequest<TypeConfig>>(&RaftPayload { json });
            prop_assert!(refused(snapshot.map(drop)));
        }
    }
}
