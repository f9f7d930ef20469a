//! The fabric's own connections: every connection between nodes (gRPC, and the Raft
//! streams of [`crate::raft::append`]), and from the operator's commands to a node, is
//! mutual TLS under the fabric CA, and every
//! connection a node opens runs over its [`Links`], where a test or `fabricsim fault`
//! cuts or slows the link to one peer.
//!
//! - [`Credentials`]: a party's certificate chain and key with the CA it trusts; builds
//!   the rustls client and server configurations (the server requires a client
//!   certificate that chains to the CA).
//! - [`Dialer`]: opens tonic channels and Raft streams to peers: TCP, the link's faults,
//!   then TLS with the party's certificate, verifying that the peer's certificate names
//!   the dialed IP. ALPN says which [`Protocol`] the connection speaks.
//! - [`serve_tls`]: turns a listener into a stream of verified TLS connections; each
//!   carries the client's [`PeerIdentity`] (the certificate's CN), so a service can check
//!   the serial a peer claims, and its [`Protocol`], so the node's server hands Raft
//!   streams to Raft and the rest to tonic. Refused handshakes are logged with their
//!   reason.
//! - [`Links`]: what one node does to the traffic it sends and receives on each link
//!   ([`LinkFault::Cut`], [`LinkFault::Delay`]).
//!
//! Faults act on the bytes of the dialing side's TCP stream, below TLS and what it carries: a cut
//! link moves no byte in either direction (calls time out, as on a cut network, and new
//! connections are not established) until it heals; a slow link holds every byte it
//! receives. A partition between two nodes is the cut set on both, so both directions of
//! every connection between them stall whoever dialed.

mod faults;
mod stream;
mod tls;

pub use faults::{LinkChange, LinkFault, LinkRule, Links};
pub use stream::LinkStream;
pub use tls::{
    Credentials, Dialer, FabricStream, PeerIdentity, Protocol, TlsConnection, TlsError, serve_tls,
};
