//! The world around the FortiGates: simulated FortiClient EMS servers, FortiCloud, and the
//! certificate authorities their certificates come from.
//!
//! - [`pki`] keeps three CAs as PEM files in a directory (the fabric CA every node trusts,
//!   an untrusted CA, and a public root for EMS Cloud) and issues each EMS the certificate
//!   its [`CertProfile`](crate::topology::CertProfile) asks for: trusted, untrusted,
//!   self-signed, expired or issued for another host.
//! - [`ems`] runs one EMS per [`EmsSpec`](crate::topology::EmsSpec): real TLS on a real
//!   socket, the HTTPS API a FortiGate calls (`/api/v1/system/serial_number`,
//!   `/api/v1/fabric/device/register`, ...), the *Administration > Fabric Devices* list,
//!   multitenant sites chosen by SNI, and the faults a test needs: stop and start again,
//!   hang (accept TCP, never answer), and cut one FortiGate off by its source address.
//!   An EMS Cloud server is an EMS whose [authorizer](EmsServer::set_authorizer) is
//!   FortiCloud's.
//! - [`forticloud`] runs the FortiCloud account of a
//!   [`ForticloudSpec`](crate::topology::ForticloudSpec): registrations and contracts
//!   (the EMS Cloud entitlement, FCEM), changed at run time, and the HTTPS API a FortiGate
//!   asks about itself (`/api/v1/devices/<serial>`).
//!
//! Requests enter over real sockets and are read, like every answer, through the contracts
//! in [`crate::wire::ems`] and [`crate::wire::forticloud`]: the FortiGate side
//! ([`crate::connector`]) uses the same types, and this module never imports it (the tests
//! that run one against the other are in `tests/integration/contracts.rs`). State enters
//! through the topology's specs and the handles' methods (a test, the lab,
//! `fabricsim ems ...`) and leaves through the handles. "Now" is read through
//! [`crate::calendar`].
//!
//! Only this module and [`crate::connector`] know rustls; the rest of the crate sees
//! DER certificates, [`EmsServer`] and [`Forticloud`] handles, [`FabricDevice`] and
//! [`CloudRecord`](crate::wire::forticloud::CloudRecord) records.
//!
//! A test drives the simulation like this:
//!
//! ```no_run
//! # async fn example(spec: fabricsim::topology::EmsSpec) -> Result<(), Box<dyn std::error::Error>> {
//! use fabricsim::sim::{EmsServer, Pki};
//!
//! let pki = Pki::open(std::path::Path::new(".fabricsim/lab/pki"))?;
//! let listener = tokio::net::TcpListener::bind(spec.listen).await?;
//! let ip = listener.local_addr()?.ip();
//! let identity = pki.server_identity(&spec.name, &spec.hostname, Some(ip), spec.certificate)?;
//! let ems = EmsServer::start(spec, identity, listener).await?;
//! // ... a node registers: ems.devices() lists it as pending ...
//! ems.authorize("FGVM01TM22000002");
//! ems.stop().await; // the node now sees "connection refused"
//! ems.start_again().await?;
//! ems.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod credentials;
pub mod ems;
pub mod forticloud;
pub mod lab;
pub mod pki;
pub mod serve;
#[cfg(test)]
mod test_client;

pub use ems::{Authorizer, DeviceState, EmsServer, FabricDevice, SimError};
pub use forticloud::Forticloud;
pub use pki::{Pki, PkiError, ServerIdentity};
