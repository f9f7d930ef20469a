//! The FortiOS CLI over SSH, as netmiko and an administrator's `ssh` reach it
//! (`docs/fortios.md`, "SSH").
//!
//! [`serve`] accepts connections on the node's SSH listener and runs russh's server on
//! each. The host key is the node's own ed25519 key ([`host_key`]); key exchange is russh's
//! default list, which offers `diffie-hellman-group-exchange-sha256`, the one method
//! paramiko and netmiko agree on. A login is the `password` method, or
//! `keyboard-interactive` asking `Password: `, both checked by
//! [`Node::check_password`] against the peer's address (so the lockout applies). A session
//! channel takes a pty and a shell (exec and subsystems are refused); the `shell` module
//! then drives a CLI session from the typed bytes, with [`terminal`] doing the line
//! editing and the `--More--` pager.

pub mod host_key;
mod shell;
pub mod terminal;

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use russh::keys::PrivateKey;
use russh::server::{Auth, ChannelOpenHandle, Msg, Response, Session};
use russh::{Channel, ChannelId, MethodKind, MethodSet};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::node::Node;

/// The prompt of the keyboard-interactive login.
const PASSWORD_PROMPT: &str = "Password: ";
/// How long a refused login waits before the client may try again.
const AUTH_REJECTION: Duration = Duration::from_millis(500);
/// A connection with no traffic for this long is closed.
const INACTIVITY: Duration = Duration::from_secs(30 * 60);

/// Serves SSH on `listener` with `host_key` until `shutdown` fires, then disconnects every
/// client and returns.
pub async fn serve(node: Node, listener: TcpListener, host_key: PrivateKey, shutdown: CancellationToken) {
    let config = Arc::new(config(host_key));
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        match accepted {
            Ok((stream, peer)) => {
                let handler = Connection {
                    node: node.clone(),
                    peer: peer.ip(),
                    shutdown: shutdown.clone(),
                };
                connections.spawn(connection(config.clone(), stream, peer, handler));
            }
            Err(error) => tracing::warn!(node = node.name(), %error, "SSH accept failed"),
        }
    }
    while connections.join_next().await.is_some() {}
}

fn config(host_key: PrivateKey) -> russh::server::Config {
    let mut methods = MethodSet::empty();
    methods.push(MethodKind::Password);
    methods.push(MethodKind::KeyboardInteractive);
    russh::server::Config {
        server_id: russh::SshId::Standard(Cow::Borrowed("SSH-2.0-FortiSSH")),
        methods,
        auth_rejection_time: AUTH_REJECTION,
        auth_rejection_time_initial: Some(Duration::ZERO),
        inactivity_timeout: Some(INACTIVITY),
        keys: vec![host_key],
        ..Default::default()
    }
}

/// Runs one client's SSH connection until it ends or the server stops.
async fn connection(
    config: Arc<russh::server::Config>,
    stream: TcpStream,
    peer: SocketAddr,
    handler: Connection,
) {
    let shutdown = handler.shutdown.clone();
    let running = match russh::server::run_stream(config, stream, handler).await {
        Ok(running) => running,
        Err(error) => {
            tracing::debug!(%peer, %error, "SSH handshake failed");
            return;
        }
    };
    // russh runs the connection on a task of its own: a stopping (or killed) server must
    // end it, not leave it behind.
    let guard = Disconnect(running.handle());
    tokio::select! {
        ended = running => {
            if let Err(error) = ended {
                tracing::debug!(%peer, %error, "SSH connection ended");
            }
        }
        () = shutdown.cancelled() => {}
    }
    drop(guard);
}

/// Disconnects its connection when dropped.
struct Disconnect(russh::server::Handle);

impl Drop for Disconnect {
    fn drop(&mut self) {
        let handle = self.0.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = handle
                    .disconnect(
                        russh::Disconnect::ByApplication,
                        "server stopping".to_owned(),
                        "en".to_owned(),
                    )
                    .await;
            });
        }
    }
}

/// russh's handler of one connection.
struct Connection {
    node: Node,
    peer: IpAddr,
    shutdown: CancellationToken,
}

impl Connection {
    fn check(&self, user: &str, password: &str) -> Auth {
        match self.node.check_password(user, password, self.peer) {
            Ok(_) => Auth::Accept,
            Err(error) => {
                tracing::info!(node = self.node.name(), user, peer = %self.peer, %error, "SSH login refused");
                Auth::reject()
            }
        }
    }
}

impl russh::server::Handler for Connection {
    type Error = russh::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        Ok(self.check(user, password))
    }

    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        user: &str,
        _submethods: &str,
        response: Option<Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        let Some(mut response) = response else {
            return Ok(Auth::Partial {
                name: Cow::Borrowed(""),
                instructions: Cow::Borrowed(""),
                prompts: Cow::Owned(vec![(Cow::Borrowed(PASSWORD_PROMPT), false)]),
            });
        };
        let password = response
            .next()
            .map(|answer| String::from_utf8_lossy(&answer).into_owned());
        Ok(match password {
            Some(password) => self.check(user, &password),
            None => Auth::reject(),
        })
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        tokio::spawn(shell::run(self.node.clone(), channel, self.shutdown.clone()));
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn shell_request(&mut self, channel: ChannelId, session: &mut Session) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    /// Only the interactive shell is served: a command given on the `ssh` line, or a
    /// subsystem such as sftp, is refused rather than left unanswered.
    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn window_change_request(
        &mut self,
        _channel: ChannelId,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        Ok(())
    }
}
