//! The simulator's public-key infrastructure: three certificate authorities and the
//! certificates the simulated EMS servers, EMS Cloud and FortiCloud present.
//!
//! Everything lives as PEM files in one directory (the state directory's `pki/`), so a
//! fabric started again presents the same certificates, and a certificate a node accepted
//! with `execute fctems verify` stays the one it accepted.
//!
//! | file | what | trusted by |
//! |---|---|---|
//! | `fabric-ca.pem` / `.key` | "fabricsim Fabric CA", issues the EMS certificates | every node |
//! | `other-ca.pem` / `.key` | "fabricsim Untrusted CA", issues the `untrusted` profile | nobody |
//! | `cloud-ca.pem` / `.key` | "fabricsim Public Root CA", issues the `public` profile (EMS Cloud, FortiCloud) | every node, out of the box |
//! | `<name>-<profile>.pem` / `.key` | an EMS's chain (leaf first) and key | |
//!
//! Data enters through [`Pki::open`], which loads the three CAs or creates the missing ones
//! (a CA whose certificate or key alone is present is an error: replacing it would
//! silently break every certificate it signed). It leaves as DER: the nodes' trust anchors
//! ([`Pki::trust_anchors`]) and per-EMS [`ServerIdentity`]s ([`Pki::server_identity`]),
//! which the EMS simulator hands to rustls. A file that cannot be read as what it should
//! be is reported with its path and what to do; it is never overwritten.
//!
//! Writes go to a temporary file that is renamed into place, and every reader and writer
//! holds an exclusive lock on `pki.lock`, so processes sharing the directory (`fabricsim up`
//! and `fabricsim node`) never see half a file or create two different CAs.
//!
//! The EMS certificates follow what a FortiClient EMS presents: subject
//! `C=US, ST=California, L=Sunnyvale, O=Fortinet, OU=FortiClientEMS, CN=<hostname>`, SAN
//! DNS `<hostname>` and `*.<hostname>` (multitenant sites are `<site>.<hostname>`) and the
//! listen address, key usage digitalSignature + keyEncipherment, extended key usage
//! serverAuth, `CA:FALSE`, subject and authority key identifiers. Keys are ECDSA P-256:
//! quick to generate, which keeps a 100-node fabric's first start short.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, PublicKeyData, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use crate::calendar::{Clock, SystemClock};
use crate::topology::CertProfile;

/// The lock file every [`Pki`] operation holds, so that two processes sharing the directory
/// neither read a CA while the other writes it nor both create one.
pub const LOCK_FILE: &str = "pki.lock";
/// Extension of the PEM files holding certificates (a chain: leaf first).
pub const CERT_EXTENSION: &str = "pem";
/// Extension of the PEM files holding PKCS#8 private keys (mode 0600 on Unix).
pub const KEY_EXTENSION: &str = "key";
/// The name the `wrong-host` profile is issued for: `.invalid` is reserved (RFC 2606) and
/// never matches a real EMS name.
pub const WRONG_HOSTNAME: &str = "other-host.invalid";
/// How far back certificates start: a day, so a node whose clock is a little behind the
/// simulator's still sees them as valid.
const BACKDATE: Duration = Duration::from_secs(24 * 60 * 60);
/// Lifetime of a CA: ten years. A CA is never renewed (renewing would invalidate every
/// certificate a node accepted), so it must outlive any lab that uses it.
const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);
/// Lifetime of an EMS certificate: two years, as a FortiClient EMS issues its own.
const LEAF_LIFETIME: Duration = Duration::from_secs(2 * 365 * 24 * 60 * 60);
/// Validity of the `expired` profile: the whole of 2020, long past.
const EXPIRED_FROM: (i32, u8, u8) = (2020, 1, 1);
/// End of the `expired` profile's validity.
const EXPIRED_UNTIL: (i32, u8, u8) = (2021, 1, 1);
/// Longest EMS name accepted in a file name; the same bound as FortiOS object names.
const MAX_IDENTITY_NAME_LEN: usize = 35;

/// Something went wrong loading or creating certificates. Every variant names the file
/// and says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// The PKI directory could not be created or locked.
    #[error("cannot use the PKI directory {}: {source}; check that it exists and is writable", dir.display())]
    Directory {
        /// The directory.
        dir: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// A file exists but could not be read.
    #[error("cannot read {}: {source}; check its permissions", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// A new file could not be written.
    #[error("cannot write {}: {source}; check that its directory is writable and not full", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// A file is not the PEM it should be.
    #[error(
        "{} is not a valid {what}: {reason}; restore it, or delete it and {} so both are created anew{consequence}",
        path.display(),
        partner.display()
    )]
    BadPem {
        /// The broken file.
        path: PathBuf,
        /// The file created together with it (certificate and key).
        partner: PathBuf,
        /// What the file should hold, e.g. "PEM certificate".
        what: &'static str,
        /// Why it is not that.
        reason: String,
        /// What deleting it costs, or an empty string.
        consequence: &'static str,
    },
    /// One file of a certificate/key pair is missing.
    #[error(
        "{} exists but {} does not; restore the missing file, or delete {} so both are created anew{consequence}",
        present.display(),
        missing.display(),
        present.display()
    )]
    Incomplete {
        /// The file that is there.
        present: PathBuf,
        /// The file that is not.
        missing: PathBuf,
        /// What deleting it costs, or an empty string.
        consequence: &'static str,
    },
    /// A certificate does not belong to the key stored beside it, or a CA certificate
    /// names another CA than its file name says.
    #[error(
        "{} does not match {}: {reason}; restore the right pair, or delete both so they are created anew{consequence}",
        cert.display(),
        key.display()
    )]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What does not match.
        reason: String,
        /// What deleting them costs, or an empty string.
        consequence: &'static str,
    },
    /// An EMS name or hostname cannot go into a file name or a certificate.
    #[error("cannot issue a certificate for {what} {value:?}: {reason}")]
    BadName {
        /// "EMS name" or "hostname".
        what: &'static str,
        /// The rejected value.
        value: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// rcgen refused to build a key or certificate.
    #[error("cannot create {what}: {source}")]
    Generate {
        /// The key or certificate being made.
        what: String,
        /// rcgen's reason.
        source: rcgen::Error,
    },
}

/// What deleting a CA costs: said in every error about a CA file.
const CA_CONSEQUENCE: &str = " (every certificate it signed is then recreated, and nodes that \
     accepted one with `execute fctems verify` must verify again)";

/// The certificate chain and private key an EMS presents, ready for rustls.
#[derive(Debug)]
pub struct ServerIdentity {
    /// The chain sent in the handshake: the leaf, then the issuing CA (the leaf alone when
    /// self-signed).
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key (PKCS#8).
    pub key: PrivateKeyDer<'static>,
}

impl Clone for ServerIdentity {
    fn clone(&self) -> Self {
        ServerIdentity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

/// The three CAs of a fabric and the directory their files live in. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Pki {
    inner: Arc<PkiInner>,
}

#[derive(Debug)]
struct PkiInner {
    dir: PathBuf,
    fabric: Ca,
    other: Ca,
    cloud: Ca,
}

/// Which of the three CAs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CaKind {
    Fabric,
    Other,
    Cloud,
}

impl CaKind {
    /// The file stem: `<stem>.pem` and `<stem>.key`.
    fn file_stem(self) -> &'static str {
        match self {
            CaKind::Fabric => "fabric-ca",
            CaKind::Other => "other-ca",
            CaKind::Cloud => "cloud-ca",
        }
    }

    /// The subject common name.
    fn common_name(self) -> &'static str {
        match self {
            CaKind::Fabric => "fabricsim Fabric CA",
            CaKind::Other => "fabricsim Untrusted CA",
            CaKind::Cloud => "fabricsim Public Root CA",
        }
    }

    /// The subject: the same every time, so a CA loaded from disk signs with the issuer
    /// name its certificate carries.
    fn subject(self) -> DistinguishedName {
        let mut name = DistinguishedName::new();
        name.push(DnType::CountryName, "US");
        name.push(DnType::OrganizationName, "fabricsim");
        name.push(DnType::CommonName, self.common_name());
        name
    }

    /// Parameters of the CA certificate; the validity fields matter only when creating it.
    fn params(self) -> CertificateParams {
        let mut params = CertificateParams::default();
        params.distinguished_name = self.subject();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.use_authority_key_identifier_extension = true;
        set_validity_from_now(&mut params, CA_LIFETIME);
        params
    }
}

/// A loaded or freshly created CA.
#[derive(Debug)]
struct Ca {
    kind: CaKind,
    cert: CertificateDer<'static>,
    /// The certificate as stored, appended to the chains of the leaves it signs.
    cert_pem: String,
    key: KeyPair,
}

impl Ca {
    /// An rcgen issuer signing with this CA's key under its subject.
    fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::new(self.kind.params(), &self.key)
    }
}

impl Pki {
    /// Loads the three CAs from `dir`, creating the directory and any CA whose two files
    /// are both absent.
    pub fn open(dir: &Path) -> Result<Pki, PkiError> {
        fs::create_dir_all(dir).map_err(|source| PkiError::Directory {
            dir: dir.to_owned(),
            source,
        })?;
        let _lock = lock(dir)?;
        let fabric = load_or_create_ca(dir, CaKind::Fabric)?;
        let other = load_or_create_ca(dir, CaKind::Other)?;
        let cloud = load_or_create_ca(dir, CaKind::Cloud)?;
        Ok(Pki {
            inner: Arc::new(PkiInner {
                dir: dir.to_owned(),
                fabric,
                other,
                cloud,
            }),
        })
    }

    /// The directory the files live in.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// What every node trusts out of the box: the fabric CA and the public root CA.
    pub fn trust_anchors(&self) -> Vec<CertificateDer<'static>> {
        vec![self.inner.fabric.cert.clone(), self.inner.cloud.cert.clone()]
    }

    /// The fabric CA's certificate.
    pub fn fabric_ca(&self) -> CertificateDer<'static> {
        self.inner.fabric.cert.clone()
    }

    /// The public root CA's certificate (what EMS Cloud chains to).
    pub fn cloud_ca(&self) -> CertificateDer<'static> {
        self.inner.cloud.cert.clone()
    }

    /// The chain and key EMS `name` presents with `profile`, for `hostname` and (except
    /// for `wrong-host`) the IP address `ip`.
    ///
    /// Kept as `<dir>/<name>-<profile>.pem` and `.key`. A stored pair is reused while it
    /// still fits (same names and addresses, same issuing CA, not expired unless the
    /// profile is `expired`); otherwise it is issued anew, since the EMS it describes has
    /// changed. Reuse keeps the fingerprint a node may have accepted.
    pub fn server_identity(
        &self,
        name: &str,
        hostname: &str,
        ip: Option<IpAddr>,
        profile: CertProfile,
    ) -> Result<ServerIdentity, PkiError> {
        check_identity_name(name)?;
        let wanted = LeafRequest::new(hostname, ip, profile)?;
        let issuer = match profile {
            CertProfile::Trusted | CertProfile::Expired | CertProfile::WrongHost => Some(&self.inner.fabric),
            CertProfile::Untrusted => Some(&self.inner.other),
            CertProfile::SelfSigned => None,
            CertProfile::Public => Some(&self.inner.cloud),
        };
        self.stored_or_issued(&format!("{name}-{profile}"), &wanted, issuer)
    }

    /// The pair stored as `<dir>/<stem>.pem` and `.key` when it is what `wanted` would
    /// issue; otherwise a new one, issued by `issuer` (self-signed when `None`) and stored.
    fn stored_or_issued(
        &self,
        stem: &str,
        wanted: &LeafRequest,
        issuer: Option<&Ca>,
    ) -> Result<ServerIdentity, PkiError> {
        let cert_path = self.inner.dir.join(format!("{stem}.{CERT_EXTENSION}"));
        let key_path = self.inner.dir.join(format!("{stem}.{KEY_EXTENSION}"));

        let _lock = lock(&self.inner.dir)?;
        let stored = read_pair(&cert_path, &key_path, "")?;
        if let Some((cert_pem, key_pem)) = stored {
            let (chain, key) = parse_pair(&cert_path, &key_path, &cert_pem, &key_pem, "")?;
            if wanted.fits(&chain, issuer) {
                return Ok(identity(chain, &key));
            }
            tracing::info!(
                file = %cert_path.display(),
                "the stored certificate no longer fits its server; issuing a new one"
            );
        }

        let key = generate_key(stem)?;
        let leaf = wanted.issue(&key, issuer, stem)?;
        let mut chain_pem = leaf.pem();
        let mut chain = vec![leaf.der().clone()];
        if let Some(ca) = issuer {
            chain_pem.push_str(&ca.cert_pem);
            chain.push(ca.cert.clone());
        }
        write_pair(&cert_path, &key_path, &chain_pem, &key)?;
        Ok(identity(chain, &key))
    }

    /// The chain and key node `name` presents on its REST API: signed by the fabric CA,
    /// subject `OU=FortiGate, CN=<hostname>`, SAN the hostname and `ip`. Kept as
    /// `<dir>/<name>-fortigate.pem` and `.key` and reused while it fits, like an EMS's. A
    /// hostname that is not a DNS name is left out of the SAN.
    pub fn node_identity(&self, name: &str, hostname: &str, ip: IpAddr) -> Result<ServerIdentity, PkiError> {
        check_identity_name(name)?;
        let hostname = hostname.to_ascii_lowercase();
        // A FortiOS hostname need not be a DNS name (`FGT_lab`); then the IP alone names it.
        let dns_names = match check_hostname(&hostname) {
            Ok(()) => BTreeSet::from([hostname.clone()]),
            Err(_) => BTreeSet::new(),
        };
        let wanted = LeafRequest {
            unit: FORTIGATE_UNIT,
            dns_names,
            common_name: hostname,
            ips: BTreeSet::from([ip]),
            expired: false,
            fabric_peer: false,
        };
        self.stored_or_issued(&format!("{name}-fortigate"), &wanted, Some(&self.inner.fabric))
    }

    /// The chain and key node `name` presents on the fabric's own gRPC connections, as
    /// server and as client: signed by the fabric CA, subject `CN=<serial>` (what a peer
    /// checks against the serial the node claims), SAN the serial and `ip` (what a
    /// dialing peer checks against the address it dialed). Kept as `<dir>/<name>-csf.pem`
    /// and `.key` (mode 0600) and reused while it fits.
    pub fn csf_identity(&self, name: &str, serial: &str, ip: IpAddr) -> Result<ServerIdentity, PkiError> {
        check_identity_name(name)?;
        self.fabric_party(&format!("{name}-csf"), serial, ip)
    }

    /// The chain and key the operator's commands (`status`, `exec`, `cli`, `ems`, `fault`)
    /// present to the nodes, and the simulators' control service presents to them, on
    /// `ip`: signed by the fabric CA, subject `CN=fabricsim operator`. Kept as
    /// `<dir>/operator.pem` and `.key`.
    pub fn operator_identity(&self, ip: IpAddr) -> Result<ServerIdentity, PkiError> {
        self.fabric_party("operator", OPERATOR_COMMON_NAME, ip)
    }

    fn fabric_party(&self, stem: &str, common_name: &str, ip: IpAddr) -> Result<ServerIdentity, PkiError> {
        let dns_name = common_name.to_ascii_lowercase();
        let wanted = LeafRequest {
            unit: FORTIGATE_UNIT,
            dns_names: BTreeSet::from_iter(check_hostname(&dns_name).ok().map(|()| dns_name.clone())),
            common_name: common_name.to_owned(),
            ips: BTreeSet::from([ip]),
            expired: false,
            fabric_peer: true,
        };
        self.stored_or_issued(stem, &wanted, Some(&self.inner.fabric))
    }
}

/// The subject CN of the operator's certificate: not a serial, so no node takes it for a
/// peer.
pub const OPERATOR_COMMON_NAME: &str = "fabricsim operator";

/// The subject OU of an EMS certificate.
const EMS_UNIT: &str = "FortiClientEMS";
/// The subject OU of a node's admin HTTPS certificate.
const FORTIGATE_UNIT: &str = "FortiGate";

/// The leaf certificate an EMS (or a node's admin HTTPS) should present.
struct LeafRequest {
    /// The subject's OU: `FortiClientEMS` or `FortiGate`.
    unit: &'static str,
    common_name: String,
    dns_names: BTreeSet<String>,
    ips: BTreeSet<IpAddr>,
    expired: bool,
    /// A party of the fabric's own connections: client as well as server.
    fabric_peer: bool,
}

impl LeafRequest {
    fn new(hostname: &str, ip: Option<IpAddr>, profile: CertProfile) -> Result<Self, PkiError> {
        check_hostname(hostname)?;
        let hostname = hostname.to_ascii_lowercase();
        Ok(match profile {
            CertProfile::WrongHost => LeafRequest {
                unit: EMS_UNIT,
                common_name: WRONG_HOSTNAME.to_owned(),
                dns_names: BTreeSet::from([WRONG_HOSTNAME.to_owned()]),
                ips: BTreeSet::new(),
                expired: false,
                fabric_peer: false,
            },
            _ => LeafRequest {
                unit: EMS_UNIT,
                dns_names: BTreeSet::from([hostname.clone(), format!("*.{hostname}")]),
                common_name: hostname,
                ips: ip.into_iter().collect(),
                expired: profile == CertProfile::Expired,
                fabric_peer: false,
            },
        })
    }

    /// Whether a stored chain is what this request would issue.
    fn fits(&self, chain: &[CertificateDer<'static>], issuer: Option<&Ca>) -> bool {
        let expected_len = if issuer.is_some() { 2 } else { 1 };
        if chain.len() != expected_len || chain.get(1) != issuer.map(|ca| &ca.cert) {
            return false;
        }
        let Ok((_, leaf)) = x509_parser::parse_x509_certificate(&chain[0]) else {
            return false;
        };
        let (dns_names, ips) = subject_alt_names(&leaf);
        let not_after = leaf.validity().not_after.timestamp();
        let still_valid = not_after > SystemClock.unix_seconds();
        let common_name = leaf
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok());
        common_name == Some(self.common_name.as_str())
            && dns_names == self.dns_names
            && ips == self.ips
            && still_valid != self.expired
    }

    /// Issues the leaf, signed by `issuer` or by its own key.
    fn issue(&self, key: &KeyPair, issuer: Option<&Ca>, stem: &str) -> Result<rcgen::Certificate, PkiError> {
        let generate = |source| PkiError::Generate {
            what: format!("the certificate {stem}"),
            source,
        };
        let mut params = CertificateParams::default();
        let mut subject = DistinguishedName::new();
        subject.push(DnType::CountryName, "US");
        subject.push(DnType::StateOrProvinceName, "California");
        subject.push(DnType::LocalityName, "Sunnyvale");
        subject.push(DnType::OrganizationName, "Fortinet");
        subject.push(DnType::OrganizationalUnitName, self.unit);
        subject.push(DnType::CommonName, self.common_name.as_str());
        params.distinguished_name = subject;
        for name in &self.dns_names {
            let name = name.clone().try_into().map_err(generate)?;
            params.subject_alt_names.push(SanType::DnsName(name));
        }
        params
            .subject_alt_names
            .extend(self.ips.iter().copied().map(SanType::IpAddress));
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        if self.fabric_peer {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ClientAuth);
        }
        params.use_authority_key_identifier_extension = true;
        if self.expired {
            let (y, m, d) = EXPIRED_FROM;
            params.not_before = rcgen::date_time_ymd(y, m, d);
            let (y, m, d) = EXPIRED_UNTIL;
            params.not_after = rcgen::date_time_ymd(y, m, d);
        } else {
            set_validity_from_now(&mut params, LEAF_LIFETIME);
        }
        match issuer {
            Some(ca) => params.signed_by(key, &ca.issuer()),
            None => params.self_signed(key),
        }
        .map_err(generate)
    }
}

/// The DNS names (lowercase) and IP addresses in a certificate's subjectAltName.
fn subject_alt_names(cert: &X509Certificate<'_>) -> (BTreeSet<String>, BTreeSet<IpAddr>) {
    let mut dns_names = BTreeSet::new();
    let mut ips = BTreeSet::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns) => {
                    dns_names.insert(dns.to_ascii_lowercase());
                }
                GeneralName::IPAddress(bytes) => {
                    if let Ok(octets) = <[u8; 4]>::try_from(*bytes) {
                        ips.insert(IpAddr::from(octets));
                    } else if let Ok(octets) = <[u8; 16]>::try_from(*bytes) {
                        ips.insert(IpAddr::from(octets));
                    }
                }
                _ => {}
            }
        }
    }
    (dns_names, ips)
}

/// Loads a CA's two files, or creates both when both are absent.
fn load_or_create_ca(dir: &Path, kind: CaKind) -> Result<Ca, PkiError> {
    let stem = kind.file_stem();
    let cert_path = dir.join(format!("{stem}.{CERT_EXTENSION}"));
    let key_path = dir.join(format!("{stem}.{KEY_EXTENSION}"));
    if let Some((cert_pem, key_pem)) = read_pair(&cert_path, &key_path, CA_CONSEQUENCE)? {
        let (chain, key) = parse_pair(&cert_path, &key_path, &cert_pem, &key_pem, CA_CONSEQUENCE)?;
        let [cert] = <[_; 1]>::try_from(chain).map_err(|chain| PkiError::BadPem {
            path: cert_path.clone(),
            partner: key_path.clone(),
            what: "CA certificate file",
            reason: format!("it holds {} certificates instead of one", chain.len()),
            consequence: CA_CONSEQUENCE,
        })?;
        let found = common_name_of(&cert);
        if found.as_deref() != Some(kind.common_name()) {
            return Err(PkiError::Mismatch {
                cert: cert_path,
                key: key_path,
                reason: format!("the certificate is for {found:?}, not {:?}", kind.common_name()),
                consequence: CA_CONSEQUENCE,
            });
        }
        let cert_pem = String::from_utf8(cert_pem).map_err(|_| PkiError::BadPem {
            path: cert_path.clone(),
            partner: key_path.clone(),
            what: "CA certificate file",
            reason: "it is not text".to_owned(),
            consequence: CA_CONSEQUENCE,
        })?;
        return Ok(Ca {
            kind,
            cert,
            cert_pem,
            key,
        });
    }

    let key = generate_key(stem)?;
    let cert = kind
        .params()
        .self_signed(&key)
        .map_err(|source| PkiError::Generate {
            what: format!("the CA certificate {stem}"),
            source,
        })?;
    let cert_pem = cert.pem();
    write_pair(&cert_path, &key_path, &cert_pem, &key)?;
    tracing::info!(file = %cert_path.display(), "created {}", kind.common_name());
    Ok(Ca {
        kind,
        cert: cert.der().clone(),
        cert_pem,
        key,
    })
}

/// The subject CN of a certificate, if it parses and has one.
fn common_name_of(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).ok()?;
    let cn = parsed.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_owned)
}

/// The bytes of a certificate file and of its key file.
type StoredPair = (Vec<u8>, Vec<u8>);

/// Reads a certificate/key pair: both present, both absent (`None`), or an error.
fn read_pair(
    cert_path: &Path,
    key_path: &Path,
    consequence: &'static str,
) -> Result<Option<StoredPair>, PkiError> {
    match (read_optional(cert_path)?, read_optional(key_path)?) {
        (Some(cert), Some(key)) => Ok(Some((cert, key))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(PkiError::Incomplete {
            present: cert_path.to_owned(),
            missing: key_path.to_owned(),
            consequence,
        }),
        (None, Some(_)) => Err(PkiError::Incomplete {
            present: key_path.to_owned(),
            missing: cert_path.to_owned(),
            consequence,
        }),
    }
}

/// The file's bytes, or `None` when it does not exist.
fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, PkiError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(PkiError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Parses a stored pair: every certificate in the file must be a well-formed X.509
/// certificate and the first one must belong to the key.
fn parse_pair(
    cert_path: &Path,
    key_path: &Path,
    cert_pem: &[u8],
    key_pem: &[u8],
    consequence: &'static str,
) -> Result<(Vec<CertificateDer<'static>>, KeyPair), PkiError> {
    let bad_cert = |reason: String| PkiError::BadPem {
        path: cert_path.to_owned(),
        partner: key_path.to_owned(),
        what: "PEM certificate file",
        reason,
        consequence,
    };
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| bad_cert(error.to_string()))?;
    if chain.is_empty() {
        return Err(bad_cert("it holds no CERTIFICATE block".to_owned()));
    }
    let mut leaf_key_info = Vec::new();
    for (index, cert) in chain.iter().enumerate() {
        let (_, parsed) = x509_parser::parse_x509_certificate(cert)
            .map_err(|error| bad_cert(format!("certificate {} is not X.509: {error}", index + 1)))?;
        if index == 0 {
            leaf_key_info = parsed.public_key().raw.to_vec();
        }
    }

    let key_text = std::str::from_utf8(key_pem).map_err(|_| PkiError::BadPem {
        path: key_path.to_owned(),
        partner: cert_path.to_owned(),
        what: "PEM private key file",
        reason: "it is not text".to_owned(),
        consequence,
    })?;
    let key = KeyPair::from_pem(key_text).map_err(|error| PkiError::BadPem {
        path: key_path.to_owned(),
        partner: cert_path.to_owned(),
        what: "PEM private key file",
        reason: error.to_string(),
        consequence,
    })?;
    if key.subject_public_key_info() != leaf_key_info {
        return Err(PkiError::Mismatch {
            cert: cert_path.to_owned(),
            key: key_path.to_owned(),
            reason: "the certificate carries another public key".to_owned(),
            consequence,
        });
    }
    Ok((chain, key))
}

/// Writes a new pair: the key first, so a certificate on disk always has its key.
fn write_pair(cert_path: &Path, key_path: &Path, cert_pem: &str, key: &KeyPair) -> Result<(), PkiError> {
    write_atomically(key_path, key.serialize_pem().as_bytes(), true)?;
    write_atomically(cert_path, cert_pem.as_bytes(), false)
}

/// Writes `contents` to a temporary file beside `path` and renames it into place, so a
/// reader never sees half a file. Private files are created with mode 0600 on Unix.
fn write_atomically(path: &Path, contents: &[u8], private: bool) -> Result<(), PkiError> {
    let write_error = |source| PkiError::Write {
        path: path.to_owned(),
        source,
    };
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let mut options = File::options();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(&temporary).map_err(write_error)?;
    file.write_all(contents).map_err(write_error)?;
    file.sync_all().map_err(write_error)?;
    drop(file);
    fs::rename(&temporary, path).map_err(write_error)
}

/// Takes the directory's exclusive lock; it is released when the file is dropped.
fn lock(dir: &Path) -> Result<File, PkiError> {
    let path = dir.join(LOCK_FILE);
    let directory_error = |source| PkiError::Directory {
        dir: dir.to_owned(),
        source,
    };
    let file = File::options()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(directory_error)?;
    file.lock().map_err(directory_error)?;
    Ok(file)
}

/// A fresh ECDSA P-256 key.
fn generate_key(stem: &str) -> Result<KeyPair, PkiError> {
    KeyPair::generate().map_err(|source| PkiError::Generate {
        what: format!("the key {stem}"),
        source,
    })
}

/// The identity rustls is given: the chain and the key in PKCS#8.
fn identity(chain: Vec<CertificateDer<'static>>, key: &KeyPair) -> ServerIdentity {
    ServerIdentity {
        chain,
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    }
}

/// EMS names become file names: letters, digits, `-` and `_` only (as the topology
/// requires), so no name can point outside the directory.
fn check_identity_name(name: &str) -> Result<(), PkiError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_IDENTITY_NAME_LEN {
        Some("it is longer than 35 characters")
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Some("it may only use letters, digits, '-' and '_'")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(PkiError::BadName {
            what: "EMS name",
            value: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// A hostname goes into DNS SANs: ASCII letters, digits, `-` and `.`, no empty label.
fn check_hostname(hostname: &str) -> Result<(), PkiError> {
    let valid = !hostname.is_empty()
        && hostname
            .split('.')
            .all(|label| !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    if valid {
        Ok(())
    } else {
        Err(PkiError::BadName {
            what: "hostname",
            value: hostname.to_owned(),
            reason: "a DNS name is dot-separated labels of letters, digits and '-'",
        })
    }
}

/// Makes `params` valid from [`BACKDATE`] ago for `lifetime` from now.
fn set_validity_from_now(params: &mut CertificateParams, lifetime: Duration) {
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    let since_epoch = SystemClock.since_epoch();
    params.not_before = epoch + since_epoch.saturating_sub(BACKDATE);
    params.not_after = epoch + since_epoch + lifetime;
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use x509_parser::extensions::ParsedExtension;

    use super::*;

    const HOSTNAME: &str = "ems.lab.example";
    const IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 21));

    fn parse<'a>(cert: &'a [u8]) -> X509Certificate<'a> {
        x509_parser::parse_x509_certificate(cert).unwrap().1
    }

    fn subject(cert: &CertificateDer<'_>) -> String {
        parse(cert).subject().to_string()
    }

    #[test]
    fn open_creates_three_cas_and_reopening_loads_the_same_ones() {
        let dir = tempfile::tempdir().unwrap();
        let first = Pki::open(dir.path()).unwrap();
        for stem in ["fabric-ca", "other-ca", "cloud-ca"] {
            assert!(dir.path().join(format!("{stem}.pem")).is_file(), "{stem}");
            assert!(dir.path().join(format!("{stem}.key")).is_file(), "{stem}");
        }
        let again = Pki::open(dir.path()).unwrap();
        assert_eq!(first.fabric_ca(), again.fabric_ca());
        assert_eq!(first.trust_anchors(), again.trust_anchors());
        assert_eq!(first.trust_anchors(), [first.fabric_ca(), first.cloud_ca()]);
        assert!(subject(&first.fabric_ca()).contains("CN=fabricsim Fabric CA"));
        assert!(subject(&first.cloud_ca()).contains("CN=fabricsim Public Root CA"));
        assert!(parse(&first.fabric_ca()).is_ca());
    }

    #[cfg(unix)]
    #[test]
    fn private_keys_are_readable_by_their_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::open(dir.path()).unwrap();
        pki.server_identity("ems1", HOSTNAME, Some(IP), CertProfile::Trusted)
            .unwrap();
        for file in ["fabric-ca.key", "ems1-trusted.key"] {
            let mode = fs::metadata(dir.path().join(file)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
    }

    #[test]
    fn a_corrupted_ca_certificate_is_reported_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        Pki::open(dir.path()).unwrap();
        let path = dir.path().join("fabric-ca.pem");
        let garbage = "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n";
        fs::write(&path, garbage).unwrap();

        let error = Pki::open(dir.path()).unwrap_err();
        assert!(
            matches!(&error, PkiError::BadPem { path: p, .. } if *p == path),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(message.starts_with(&path.display().to_string()), "{message}");
        assert!(message.contains("restore it, or delete it and"), "{message}");
        assert!(message.contains("execute fctems verify"), "{message}");
        assert_eq!(fs::read_to_string(&path).unwrap(), garbage);
    }

    #[test]
    fn a_certificate_that_is_not_x509_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        Pki::open(dir.path()).unwrap();
        let path = dir.path().join("cloud-ca.pem");
        fs::write(
            &path,
            "-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let error = Pki::open(dir.path()).unwrap_err();
        assert!(error.to_string().contains("is not X.509"), "{error}");
    }

    #[test]
    fn a_corrupted_or_mismatched_key_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        Pki::open(dir.path()).unwrap();
        let key = dir.path().join("other-ca.key");
        fs::write(&key, "garbage").unwrap();
        let error = Pki::open(dir.path()).unwrap_err();
        assert!(
            matches!(&error, PkiError::BadPem { path, what: "PEM private key file", .. } if *path == key),
            "{error:?}"
        );

        fs::copy(dir.path().join("fabric-ca.key"), &key).unwrap();
        let error = Pki::open(dir.path()).unwrap_err();
        assert!(matches!(error, PkiError::Mismatch { .. }), "{error:?}");
    }

    #[test]
    fn half_a_ca_is_reported_instead_of_replaced() {
        let dir = tempfile::tempdir().unwrap();
        Pki::open(dir.path()).unwrap();
        fs::remove_file(dir.path().join("fabric-ca.key")).unwrap();
        let error = Pki::open(dir.path()).unwrap_err();
        match &error {
            PkiError::Incomplete { present, missing, .. } => {
                assert_eq!(*present, dir.path().join("fabric-ca.pem"));
                assert_eq!(*missing, dir.path().join("fabric-ca.key"));
            }
            other => panic!("expected Incomplete, got {other:?}"),
        }
        assert!(dir.path().join("fabric-ca.pem").exists());
    }

    #[test]
    fn a_swapped_ca_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        Pki::open(dir.path()).unwrap();
        for ext in ["pem", "key"] {
            fs::copy(
                dir.path().join(format!("cloud-ca.{ext}")),
                dir.path().join(format!("fabric-ca.{ext}")),
            )
            .unwrap();
        }
        let error = Pki::open(dir.path()).unwrap_err();
        assert!(
            error.to_string().contains("not \"fabricsim Fabric CA\""),
            "{error}"
        );
    }

    #[test]
    fn a_trusted_certificate_looks_like_an_ems_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::open(dir.path()).unwrap();
        let identity = pki
            .server_identity("ems1", HOSTNAME, Some(IP), CertProfile::Trusted)
            .unwrap();
        assert_eq!(identity.chain.len(), 2);
        assert_eq!(identity.chain[1], pki.fabric_ca());
        let leaf = parse(&identity.chain[0]);
        assert_eq!(
            leaf.subject().to_string(),
            "C=US, ST=California, L=Sunnyvale, O=Fortinet, OU=FortiClientEMS, CN=ems.lab.example"
        );
        assert!(leaf.issuer().to_string().contains("CN=fabricsim Fabric CA"));
        let (dns, ips) = subject_alt_names(&leaf);
        assert_eq!(
            dns,
            BTreeSet::from(["ems.lab.example".to_owned(), "*.ems.lab.example".to_owned()])
        );
        assert_eq!(ips, BTreeSet::from([IP]));

        let key_usage = leaf.key_usage().unwrap().unwrap().value;
        assert!(key_usage.digital_signature() && key_usage.key_encipherment());
        assert!(!key_usage.key_cert_sign());
        assert!(leaf.extended_key_usage().unwrap().unwrap().value.server_auth);
        assert!(!leaf.basic_constraints().unwrap().unwrap().value.ca);
        let extensions: Vec<_> = leaf.extensions().iter().map(|e| e.parsed_extension()).collect();
        assert!(
            extensions
                .iter()
                .any(|e| matches!(e, ParsedExtension::SubjectKeyIdentifier(_)))
        );
        assert!(
            extensions
                .iter()
                .any(|e| matches!(e, ParsedExtension::AuthorityKeyIdentifier(_)))
        );

        let now = SystemClock.unix_seconds();
        let validity = leaf.validity();
        let day = 24 * 60 * 60;
        assert!((now - day - 60..=now - day + 60).contains(&validity.not_before.timestamp()));
        let two_years = 2 * 365 * day;
        assert!(validity.not_after.timestamp() - now > two_years - 60);
    }

    #[test]
    fn each_profile_has_its_issuer_names_and_validity() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::open(dir.path()).unwrap();
        let issue = |profile| pki.server_identity("ems1", HOSTNAME, Some(IP), profile).unwrap();

        let untrusted = issue(CertProfile::Untrusted);
        assert_eq!(untrusted.chain.len(), 2);
        assert!(subject(&untrusted.chain[1]).contains("CN=fabricsim Untrusted CA"));

        let self_signed = issue(CertProfile::SelfSigned);
        assert_eq!(self_signed.chain.len(), 1);
        let leaf = parse(&self_signed.chain[0]);
        assert_eq!(leaf.subject().as_raw(), leaf.issuer().as_raw());

        let expired = issue(CertProfile::Expired);
        let leaf = parse(&expired.chain[0]);
        assert_eq!(leaf.validity().not_before.to_datetime().year(), 2020);
        assert_eq!(leaf.validity().not_after.to_datetime().year(), 2021);
        assert_eq!(expired.chain[1], pki.fabric_ca());

        let wrong_host = issue(CertProfile::WrongHost);
        let leaf = parse(&wrong_host.chain[0]);
        let (dns, ips) = subject_alt_names(&leaf);
        assert_eq!(dns, BTreeSet::from([WRONG_HOSTNAME.to_owned()]));
        assert!(ips.is_empty());
        assert!(leaf.subject().to_string().ends_with("CN=other-host.invalid"));

        for file in [
            "ems1-trusted",
            "ems1-untrusted",
            "ems1-self-signed",
            "ems1-expired",
            "ems1-wrong-host",
        ] {
            let expected = file != "ems1-trusted";
            assert_eq!(
                dir.path().join(format!("{file}.pem")).is_file(),
                expected,
                "{file}"
            );
        }
    }

    #[test]
    fn a_public_certificate_chains_to_the_public_root_that_nodes_trust() {
        use rustls::RootCertStore;
        use rustls::client::WebPkiServerVerifier;
        use rustls::client::danger::ServerCertVerifier;
        use rustls::pki_types::{ServerName, UnixTime};

        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::open(dir.path()).unwrap();
        let hostname = "forticloud.example";
        let identity = pki
            .server_identity("forticloud", hostname, Some(IP), CertProfile::Public)
            .unwrap();
        assert_eq!(identity.chain.len(), 2);
        assert_eq!(identity.chain[1], pki.cloud_ca());
        let leaf = parse(&identity.chain[0]);
        assert!(leaf.issuer().to_string().contains("CN=fabricsim Public Root CA"));
        assert!(leaf.subject().to_string().ends_with("CN=forticloud.example"));
        assert!(dir.path().join("forticloud-public.pem").is_file());

        let verifies = |anchors: Vec<CertificateDer<'static>>| {
            let mut roots = RootCertStore::empty();
            for anchor in anchors {
                roots.add(anchor).unwrap();
            }
            let provider = crate::wire::crypto_provider();
            let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
            verifier
                .verify_server_cert(
                    &identity.chain[0],
                    &identity.chain[1..],
                    &ServerName::try_from(hostname).unwrap(),
                    &[],
                    UnixTime::now(),
                )
                .is_ok()
        };
        assert!(verifies(pki.trust_anchors()), "nodes trust it out of the box");
        assert!(verifies(vec![pki.cloud_ca()]));
        assert!(!verifies(vec![pki.fabric_ca()]), "the fabric CA did not sign it");
    }

    #[test]
    fn an_identity_is_reused_while_it_fits_and_reissued_when_its_ems_changed() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::open(dir.path()).unwrap();
        let first = pki
            .server_identity("ems1", HOSTNAME, Some(IP), CertProfile::SelfSigned)
            .unwrap();
        let reopened = Pki::open(dir.path()).unwrap();
        let again = reopened
            .server_identity("ems1", HOSTNAME, Some(IP), CertProfile::SelfSigned)
            .unwrap();
        assert_eq!(first.chain, again.chain);
        assert_eq!(first.key.secret_der(), again.key.secret_der());

        let moved = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 22));
        let reissued = pki
            .server_identity("ems1", HOSTNAME, Some(moved), CertProfile::SelfSigned)
            .unwrap();
        assert_ne!(first.chain, reissued.chain);
        assert_eq!(
            subject_alt_names(&parse(&reissued.chain[0])).1,
            BTreeSet::from([moved])
        );
    }

    #[test]
    fn a_corrupted_identity_is_reported_not_reissued() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::open(dir.path()).unwrap();
        pki.server_identity("ems1", HOSTNAME, Some(IP), CertProfile::Trusted)
            .unwrap();
        let path = dir.path().join("ems1-trusted.pem");
        fs::write(&path, "").unwrap();
        let error = pki
            .server_identity("ems1", HOSTNAME, Some(IP), CertProfile::Trusted)
            .unwrap_err();
        assert!(
            error.to_string().contains("it holds no CERTIFICATE block"),
            "{error}"
        );
        assert_eq!(fs::read(&path).unwrap(), b"");
    }

    #[test]
    fn names_that_cannot_be_files_or_dns_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::open(dir.path()).unwrap();
        for name in ["", "../ems", "ems 1"] {
            let error = pki
                .server_identity(name, HOSTNAME, None, CertProfile::Trusted)
                .unwrap_err();
            assert!(
                matches!(error, PkiError::BadName { what: "EMS name", .. }),
                "{name:?}"
            );
        }
        for hostname in ["", "ems..example", "ems lab", "ems.example."] {
            let error = pki
                .server_identity("ems1", hostname, None, CertProfile::Trusted)
                .unwrap_err();
            assert!(
                matches!(error, PkiError::BadName { what: "hostname", .. }),
                "{hostname:?}"
            );
        }
    }
}
