//! The client side: what `fabricsim status|exec|cli`, the harness and joining members use.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Request, Streaming};

use super::{ADMISSION, ADMISSION_DENIED, ADMISSION_PENDING, AUTHORIZATION};
use crate::cli::Reply;
use crate::link::{Credentials, Dialer, LinkChange, LinkRule, Links, TlsError};
use crate::node::NodeStatus;
use crate::node::admission::Admission;
use crate::wire::proto::fabric::admin_client::AdminClient;
use crate::wire::proto::fabric::member_client::MemberClient;
use crate::wire::proto::fabric::{CliReply, CliRequest, JoinRequest, StatusRequest, cli_request};

/// How long connecting to a node may take before it counts as down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Deadline of a status call.
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);
/// Deadline of a request to join: longer than the root's own bounds on admitting.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a call to a node failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "cannot connect to {addr} ({source}); is `fabricsim up` running for this topology in this directory?"
    )]
    Connect {
        addr: SocketAddr,
        source: tonic::transport::Error,
    },
    #[error("{addr} answered: {}", .status.message())]
    Call { addr: SocketAddr, status: tonic::Status },
    #[error("{addr} closed the CLI session")]
    SessionClosed { addr: SocketAddr },
    /// The simulators refused the request; the text says why.
    #[error("{0}")]
    Refused(String),
}

impl ClientError {
    /// When the root refused a request to join because the member is not authorized:
    /// whether it is pending or denied.
    pub fn admission_refusal(&self) -> Option<Admission> {
        let ClientError::Call { status, .. } = self else {
            return None;
        };
        if status.code() != tonic::Code::PermissionDenied {
            return None;
        }
        match status.metadata().get(ADMISSION)?.to_str().ok()? {
            ADMISSION_PENDING => Some(Admission::Pending),
            ADMISSION_DENIED => Some(Admission::Denied),
            _ => None,
        }
    }

    /// The error of a call to `addr` that answered `status`.
    fn call(addr: SocketAddr) -> impl FnOnce(tonic::Status) -> ClientError {
        move |status| ClientError::Call { addr, status }
    }
}

async fn channel(dialer: &Dialer, addr: SocketAddr) -> Result<Channel, ClientError> {
    dialer
        .connect(addr, CONNECT_TIMEOUT)
        .await
        .map_err(|source| ClientError::Connect { addr, source })
}

/// What the operator's commands present to a node: the admin token, and the operator's
/// certificate for the mutual TLS every fabric connection requires. Cheap to clone.
#[derive(Clone)]
pub struct Operator {
    token: MetadataValue<tonic::metadata::Ascii>,
    dialer: Dialer,
}

impl Operator {
    pub fn new(token: &str, credentials: &Credentials) -> Result<Operator, TlsError> {
        // The operator's connections have no faults: `fabricsim fault` cuts links between
        // nodes, never the operator's view of them.
        let dialer = Dialer::new(credentials, Links::default())?;
        Ok(Operator::with_dialer(token, dialer))
    }

    /// A node asking other nodes as the operator does: with the admin token, over the
    /// node's own `dialer` (its certificate and its links, faults included).
    pub fn with_dialer(token: &str, dialer: Dialer) -> Operator {
        Operator {
            token: bearer(token),
            dialer,
        }
    }
}

/// A member's requests to join, over one channel to the root that reconnects as needed
/// (the member asks again every few seconds for as long as it runs).
pub struct Joiner {
    root: SocketAddr,
    client: MemberClient<Channel>,
}

impl Joiner {
    /// Requests go to the root at `root`, over the member's `dialer`.
    pub fn new(dialer: &Dialer, root: SocketAddr) -> Joiner {
        Joiner {
            root,
            client: MemberClient::new(dialer.channel(root, CONNECT_TIMEOUT)),
        }
    }

    /// Asks the root to admit the member; answers whether it became a voter.
    pub async fn join(&mut self, request: JoinRequest) -> Result<bool, ClientError> {
        let mut request = Request::new(request);
        request.set_timeout(JOIN_TIMEOUT);
        let reply = self
            .client
            .join(request)
            .await
            .map_err(ClientError::call(self.root))?;
        Ok(reply.into_inner().voter)
    }
}

/// The `authorization` value for the admin token.
fn bearer(token: &str) -> MetadataValue<tonic::metadata::Ascii> {
    format!("Bearer {token}")
        .parse()
        .expect("the admin token is printable ASCII")
}

/// A request carrying the admin token.
fn authorized<T>(message: T, token: &MetadataValue<tonic::metadata::Ascii>) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(AUTHORIZATION, token.clone());
    request
}

/// A command for the simulators of a running `fabricsim up`.
pub enum SimCommand {
    Ems(crate::wire::proto::fabric::EmsCommand),
    Cloud(crate::wire::proto::fabric::CloudCommand),
}

/// Runs one `fabricsim ems` or `fabricsim cloud` action and returns what to print.
pub async fn sim(addr: SocketAddr, operator: &Operator, command: SimCommand) -> Result<String, ClientError> {
    let mut client =
        crate::wire::proto::fabric::sim_client::SimClient::new(channel(&operator.dialer, addr).await?);
    let token = &operator.token;
    let reply = match command {
        SimCommand::Ems(command) => client.ems(authorized(command, token)).await,
        SimCommand::Cloud(command) => client.cloud(authorized(command, token)).await,
    };
    let reply = reply.map_err(|status| match status.code() {
        tonic::Code::InvalidArgument => ClientError::Refused(status.message().to_owned()),
        _ => ClientError::Call { addr, status },
    })?;
    Ok(reply.into_inner().output)
}

/// An authenticated connection to one node's admin service. Cloning it shares the
/// connection.
#[derive(Clone)]
pub struct AdminConnection {
    addr: SocketAddr,
    token: MetadataValue<tonic::metadata::Ascii>,
    client: AdminClient<Channel>,
}

impl AdminConnection {
    pub async fn connect(addr: SocketAddr, operator: &Operator) -> Result<AdminConnection, ClientError> {
        Ok(AdminConnection {
            addr,
            token: operator.token.clone(),
            client: AdminClient::new(channel(&operator.dialer, addr).await?),
        })
    }

    /// A connection made at its first call and made again whenever it has dropped: for
    /// a caller that asks the same node again and again.
    pub fn lazy(addr: SocketAddr, operator: &Operator) -> AdminConnection {
        AdminConnection {
            addr,
            token: operator.token.clone(),
            client: AdminClient::new(operator.dialer.channel(addr, CONNECT_TIMEOUT)),
        }
    }

    fn request<T>(&self, message: T) -> Request<T> {
        authorized(message, &self.token)
    }

    /// The node's current state.
    pub async fn status(&mut self) -> Result<NodeStatus, ClientError> {
        let mut request = self.request(StatusRequest {});
        request.set_timeout(STATUS_TIMEOUT);
        let status = self
            .client
            .status(request)
            .await
            .map_err(ClientError::call(self.addr))?
            .into_inner();
        Ok(status.into())
    }

    /// Changes the node's link faults; answers its faulty links after the change.
    pub async fn links(&mut self, change: LinkChange) -> Result<Vec<LinkRule>, ClientError> {
        let mut request = self.request(crate::wire::proto::fabric::LinksRequest::from(change));
        request.set_timeout(STATUS_TIMEOUT);
        let reply = self
            .client
            .links(request)
            .await
            .map_err(ClientError::call(self.addr))?
            .into_inner();
        Ok(reply.rules.into_iter().map(LinkRule::from).collect())
    }

    /// Opens a CLI session and returns it with its first prompt.
    pub async fn session(&mut self) -> Result<CliSession, ClientError> {
        let (request_tx, request_rx) = mpsc::channel(16);
        let request = self.request(ReceiverStream::new(request_rx));
        let replies = self
            .client
            .cli(request)
            .await
            .map_err(ClientError::call(self.addr))?
            .into_inner();
        let mut session = CliSession {
            addr: self.addr,
            request_tx,
            replies,
            prompt: String::new(),
        };
        session.run("").await?;
        Ok(session)
    }
}

/// A CLI session on a node: lines go in one at a time, each gets its reply.
pub struct CliSession {
    addr: SocketAddr,
    request_tx: mpsc::Sender<CliRequest>,
    replies: Streaming<CliReply>,
    prompt: String,
}

impl CliSession {
    /// The prompt for the next line.
    pub fn prompt(&self) -> &str {
        &self.prompt
    }

    async fn call(&mut self, kind: cli_request::Kind, line: &str) -> Result<CliReply, ClientError> {
        self.send(kind, line).await?;
        self.reply().await
    }

    async fn send(&mut self, kind: cli_request::Kind, line: &str) -> Result<(), ClientError> {
        let request = CliRequest {
            kind: kind as i32,
            line: line.to_owned(),
        };
        self.request_tx
            .send(request)
            .await
            .map_err(|_| ClientError::SessionClosed { addr: self.addr })
    }

    async fn reply(&mut self) -> Result<CliReply, ClientError> {
        let reply = match self.replies.message().await {
            Ok(Some(reply)) => reply,
            Ok(None) => return Err(ClientError::SessionClosed { addr: self.addr }),
            Err(status) => return Err(ClientError::call(self.addr)(status)),
        };
        self.prompt = reply.prompt.clone();
        Ok(reply)
    }

    /// Runs `lines` sent all at once, as a pasted block is, then reads their replies in
    /// order: one round trip instead of one per line. For lines that ask no question (a
    /// question would take the next line as its answer).
    pub async fn run_pasted(&mut self, lines: &[String]) -> Result<Vec<Reply>, ClientError> {
        for line in lines {
            self.send(cli_request::Kind::Line, line).await?;
        }
        let mut replies = Vec::with_capacity(lines.len());
        for _ in lines {
            replies.push(self.reply().await?.into());
        }
        Ok(replies)
    }

    /// Runs one CLI line.
    pub async fn run(&mut self, line: &str) -> Result<Reply, ClientError> {
        Ok(self.call(cli_request::Kind::Line, line).await?.into())
    }

    /// Runs `lines` as one script; every question is answered with `answer`.
    pub async fn script(&mut self, lines: &[String], answer: &str) -> Result<Reply, ClientError> {
        let mut all = Reply::default();
        for line in lines {
            let mut reply = self.run(line).await?;
            while reply.awaiting_answer {
                all.output.push_str(&reply.output);
                all.output.push_str(answer);
                all.output.push('\n');
                reply = self.run(answer).await?;
            }
            all.output.push_str(&reply.output);
            all.failed |= reply.failed;
        }
        Ok(all)
    }

    /// Candidates for the last word of `line`.
    pub async fn complete(&mut self, line: &str) -> Result<Vec<String>, ClientError> {
        Ok(self.call(cli_request::Kind::Complete, line).await?.completions)
    }

    /// The `?` help after `line`.
    pub async fn help(&mut self, line: &str) -> Result<String, ClientError> {
        Ok(self.call(cli_request::Kind::Help, line).await?.output)
    }
}
