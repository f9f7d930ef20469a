//! The wire contracts: what crosses a socket, written once for both ends.
//!
//! - [`proto`]: the generated protobuf messages and gRPC stubs of `proto/*.proto` (the
//!   fabric's admin, member and simulator services, and the Raft transport).
//! - [`ems`]: the HTTPS API of a FortiClient EMS as a FortiGate calls it: paths, the
//!   headers that name the FortiGate, and the JSON bodies of every answer.
//! - [`forticloud`]: the HTTPS API a FortiGate asks FortiCloud about itself, and the
//!   device record it answers.
//! - [`CloudAccess`]: where a FortiGate finds FortiCloud and EMS Cloud.
//! - [`crypto_provider`]: the cryptography of every TLS session.
//!
//! Nothing here opens a socket: the ends that do import these types, so a field renamed on
//! one side is renamed on the other. For gRPC those ends are [`crate::rpc`] and
//! [`crate::raft`]; for the two HTTPS APIs the client is [`crate::connector`] (the
//! FortiGate side) and the server is [`crate::sim`] (the simulated EMS and FortiCloud).
//! Data enters and leaves this module only as values: serde types that the client
//! deserializes from what the server serialized.
//!
//! What both HTTPS APIs share lives here: the header carrying the asking FortiGate's
//! serial ([`SERIAL_HEADER`]), which serials either API accepts ([`is_serial_field`]) and
//! the body of every refusal ([`ErrorBody`]).

pub mod ems;
pub mod forticloud;
pub mod proto;

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// Header carrying the asking FortiGate's serial number, on every EMS and FortiCloud call.
/// HTTP header names are case-insensitive; this is how a FortiGate writes it.
pub const SERIAL_HEADER: &str = "X-FortiGate-Serial";

/// Longest serial either API takes in a header or a path: twice a FortiGate serial's 16
/// characters, room for any product's format while bounding what a request makes a server
/// handle and store.
pub const MAX_SERIAL_FIELD_LEN: usize = 32;

/// Whether `value` may be sent where either API expects a serial (the [`SERIAL_HEADER`],
/// the FortiCloud device path): 1 to [`MAX_SERIAL_FIELD_LEN`] ASCII letters and digits.
/// This bounds what crosses the wire; whether it is a well-formed FortiGate serial is
/// [`crate::domain::is_serial`].
pub fn is_serial_field(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_SERIAL_FIELD_LEN
        && value.chars().all(|c| c.is_ascii_alphanumeric())
}

/// `{"error": "..."}`: the body of every refusal either API sends, whatever the status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// One line for a person.
    pub error: String,
}

/// The cryptography every TLS session of the fabric uses, client and server: ring.
/// `main` installs it process-wide, and each TLS configuration names it explicitly, so
/// tests that never run `main` use the same one.
pub fn crypto_provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}

/// The addresses of FortiCloud's API and of the EMS Cloud server: the simulated world
/// listens there ([`crate::sim::lab::Lab::cloud_access`]) and every node dials them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloudAccess {
    pub api: SocketAddr,
    pub ems: SocketAddr,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_fields_are_bounded_letters_and_digits() {
        assert!(is_serial_field("FGVM01TM22000001"));
        assert!(is_serial_field(&"F".repeat(MAX_SERIAL_FIELD_LEN)));
        for refused in ["", "FG VM", "FGVM/../x", &"F".repeat(MAX_SERIAL_FIELD_LEN + 1)] {
            assert!(!is_serial_field(refused), "{refused:?}");
        }
    }
}
