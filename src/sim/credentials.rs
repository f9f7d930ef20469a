//! The PKI's certificates for the fabric's own connections, as [`crate::link`] takes them.

use std::net::IpAddr;

use super::pki::{Pki, PkiError};
use crate::link::Credentials;

impl Pki {
    /// [`Pki::csf_identity`] with the fabric CA, as the fabric's connections take it.
    pub fn csf_credentials(&self, name: &str, serial: &str, ip: IpAddr) -> Result<Credentials, PkiError> {
        let identity = self.csf_identity(name, serial, ip)?;
        Ok(Credentials::new(self.fabric_ca(), identity.chain, identity.key))
    }

    /// [`Pki::operator_identity`] on loopback (where the simulators' control service
    /// listens), with the fabric CA.
    pub fn operator_credentials(&self) -> Result<Credentials, PkiError> {
        let identity = self.operator_identity(IpAddr::from(std::net::Ipv4Addr::LOCALHOST))?;
        Ok(Credentials::new(self.fabric_ca(), identity.chain, identity.key))
    }
}
