//! The certificate verdict: what this node makes of the chain an EMS presents.
//!
//! A FortiGate does not abort the TLS handshake over an EMS certificate it cannot trust:
//! it finishes the handshake, shows the certificate, and reports why it is not authorized.
//! [`ClassifyingVerifier`] does the same inside rustls: it never fails
//! `verify_server_cert`, records a [`Verdict`] instead, and still checks the handshake
//! signatures with the provider's algorithms, so the peer must hold the key of the
//! certificate it presented.
//!
//! The verdict, first match wins:
//! 1. the leaf is past its `notAfter` -> expired (even when pinned);
//! 2. the leaf is before its `notBefore` -> untrusted (a pinned leaf is not valid yet either);
//! 3. the leaf's DER is pinned (`execute fctems verify` accepted it) -> authorized;
//! 4. rustls' WebPKI verifier against the installed CAs, name check included: success ->
//!    authorized, wrong name -> name-mismatch, anything else -> untrusted.
//!
//! Data enters as a [`TrustStore`] and the handshake's chain; it leaves as a [`Verdict`]
//! read back from the [`VerdictSlot`] after the handshake.

use std::sync::{Arc, Mutex, PoisonError};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};

use super::{CertificateState, TrustStore};

/// What the node concluded about the presented chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// The state the status reports.
    pub state: CertificateState,
    /// Whether the chain verifies against the installed CAs for this server name,
    /// regardless of pinning.
    pub trusted_by_ca: bool,
    /// The leaf's `notAfter` as Unix seconds, when the leaf could be parsed.
    pub not_after: Option<i64>,
}

/// Where the verifier leaves its verdict for the code that drove the handshake.
///
/// A std mutex, not a tokio one: it is held only to copy a value, never across an await.
pub(crate) type VerdictSlot = Arc<Mutex<Option<Verdict>>>;

/// Reads the verdict a handshake left, if the verifier ran.
pub(crate) fn take_verdict(slot: &VerdictSlot) -> Option<Verdict> {
    slot.lock().unwrap_or_else(PoisonError::into_inner).take()
}

/// A rustls verifier that classifies instead of refusing.
#[derive(Debug)]
pub(crate) struct ClassifyingVerifier {
    provider: Arc<CryptoProvider>,
    /// `None` when no installed CA could be used: every unpinned chain is then untrusted.
    webpki: Option<Arc<WebPkiServerVerifier>>,
    pinned: Vec<CertificateDer<'static>>,
    slot: VerdictSlot,
}

impl ClassifyingVerifier {
    /// A verifier for one connection, judging against `trust`, reporting into `slot`.
    pub(crate) fn new(provider: Arc<CryptoProvider>, trust: &TrustStore, slot: VerdictSlot) -> Self {
        let mut roots = RootCertStore::empty();
        let (added, ignored) = roots.add_parsable_certificates(trust.anchors.iter().cloned());
        if ignored > 0 {
            tracing::debug!(
                added,
                ignored,
                "some installed CA certificates cannot be trust anchors"
            );
        }
        let webpki = if roots.is_empty() {
            None
        } else {
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| tracing::debug!(error = %e, "no usable CA verifier"))
                .ok()
        };
        ClassifyingVerifier {
            provider,
            webpki,
            pinned: trust.pinned.clone(),
            slot,
        }
    }

    /// The verdict for one chain at `now`, as described in the module documentation.
    pub(crate) fn classify(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> Verdict {
        let by_ca = match &self.webpki {
            Some(webpki) => {
                match webpki.verify_server_cert(end_entity, intermediates, server_name, &[], now) {
                    Ok(_) => CertificateState::Authorized,
                    Err(Error::InvalidCertificate(
                        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
                    )) => CertificateState::NameMismatch,
                    Err(error) => {
                        tracing::debug!(%error, "EMS certificate does not chain to an installed CA");
                        CertificateState::Untrusted
                    }
                }
            }
            None => CertificateState::Untrusted,
        };
        let validity = x509_parser::parse_x509_certificate(end_entity.as_ref())
            .ok()
            .map(|(_, cert)| {
                (
                    cert.validity().not_before.timestamp(),
                    cert.validity().not_after.timestamp(),
                )
            });
        let now_secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let pinned = self.pinned.iter().any(|p| p.as_ref() == end_entity.as_ref());
        let state = match validity {
            Some((_, not_after)) if now_secs > not_after => CertificateState::Expired,
            Some((not_before, _)) if now_secs < not_before => CertificateState::Untrusted,
            // A leaf x509-parser cannot read is nothing a user could have meant to accept.
            None => CertificateState::Untrusted,
            Some(_) if pinned => CertificateState::Authorized,
            Some(_) => by_ca,
        };
        Verdict {
            state,
            trusted_by_ca: by_ca == CertificateState::Authorized,
            not_after: validity.map(|(_, not_after)| not_after),
        }
    }
}

impl ServerCertVerifier for ClassifyingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let verdict = self.classify(end_entity, intermediates, server_name, now);
        *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(verdict);
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::{Clock, SystemClock};
    use crate::connector::test_ems::{Leaf, TestPki};

    fn verifier(trust: &TrustStore) -> ClassifyingVerifier {
        let provider = crate::wire::crypto_provider();
        ClassifyingVerifier::new(provider, trust, VerdictSlot::default())
    }

    fn name(server: &str) -> ServerName<'static> {
        ServerName::try_from(server.to_owned()).expect("a server name")
    }

    fn now() -> UnixTime {
        UnixTime::since_unix_epoch(SystemClock.since_epoch())
    }

    #[test]
    fn verdicts_follow_the_documented_order() {
        let pki = TestPki::new();
        let trust = TrustStore {
            anchors: vec![pki.ca_der().clone()],
            pinned: vec![],
        };
        let v = verifier(&trust);
        let chain = |leaf: Leaf| (leaf.der().clone(), leaf.chain[1..].to_vec());

        let (leaf, rest) = chain(pki.trusted_leaf());
        let verdict = v.classify(&leaf, &rest, &name("ems.lab.example"), now());
        assert_eq!(verdict.state, CertificateState::Authorized);
        assert!(verdict.trusted_by_ca);
        let site = v.classify(&leaf, &rest, &name("default.ems.lab.example"), now());
        assert_eq!(site.state, CertificateState::Authorized);
        let ip = v.classify(&leaf, &rest, &name("127.0.0.1"), now());
        assert_eq!(ip.state, CertificateState::Authorized);

        let (wrong, rest) = chain(pki.wrong_name_leaf());
        let verdict = v.classify(&wrong, &rest, &name("ems.lab.example"), now());
        assert_eq!(verdict.state, CertificateState::NameMismatch);
        assert!(!verdict.trusted_by_ca);

        let (expired, rest) = chain(pki.expired_leaf());
        let verdict = v.classify(&expired, &rest, &name("ems.lab.example"), now());
        assert_eq!(verdict.state, CertificateState::Expired);
        assert_eq!(verdict.not_after, Some(1_609_459_200));

        let self_signed = pki.self_signed_leaf().der().clone();
        let verdict = v.classify(&self_signed, &[], &name("ems.lab.example"), now());
        assert_eq!(verdict.state, CertificateState::Untrusted);
    }

    #[test]
    fn pinning_authorizes_but_never_revives_an_expired_leaf() {
        let pki = TestPki::new();
        let self_signed = pki.self_signed_leaf().der().clone();
        let expired = pki.expired_leaf().der().clone();
        let trust = TrustStore {
            anchors: vec![],
            pinned: vec![self_signed.clone(), expired.clone()],
        };
        let v = verifier(&trust);
        let verdict = v.classify(&self_signed, &[], &name("anything.invalid"), now());
        assert_eq!(verdict.state, CertificateState::Authorized);
        assert!(!verdict.trusted_by_ca);
        let verdict = v.classify(&expired, &[], &name("ems.lab.example"), now());
        assert_eq!(verdict.state, CertificateState::Expired);
    }
}
