//! Certificate text as FortiOS prints it for `execute fctems verify`, and certificate
//! fingerprints. Dates are written by [`crate::calendar`].
//!
//! Input is a certificate's DER; output is text. The layout follows the FortiOS console
//! (a tab where the console indents by eight columns); the field values follow OpenSSL's
//! wording, which FortiOS uses too (`X509v3 Basic Constraints`, `CA:FALSE`,
//! `TLS Web Server Authentication`). Everything here is deterministic: the same DER
//! always renders the same text.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use sha2::{Digest, Sha256};

use crate::calendar::date_time;
use x509_parser::extensions::{GeneralName, ParsedExtension, X509Extension};
use x509_parser::objects::{oid_registry, oid2abbrev};
use x509_parser::prelude::{X509Certificate, X509Name};

/// Width of the label column in the certificate block (`Fingerprint: ` is the longest).
const LABEL_WIDTH: usize = 13;
/// Width of the label column inside one extension (`Critical: ` is the longest).
const EXTENSION_LABEL_WIDTH: usize = 10;

/// SHA-256 of `der`, as uppercase hex pairs joined by `:`.
pub fn fingerprint(der: &[u8]) -> String {
    hex_pairs(&Sha256::digest(der), true)
}

/// A certificate as PEM with LF line endings: how `vpn certificate remote` stores one.
pub fn certificate_pem(der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new("CERTIFICATE", der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// The `execute fctems verify` block for one certificate, ending with a newline.
///
/// Fails only when `der` is not an X.509 certificate.
pub fn render_certificate(der: &[u8]) -> Result<String, String> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let validity = cert.validity();
    let root_ca = if cert.subject().as_raw() == cert.issuer().as_raw() {
        "Yes"
    } else {
        "No"
    };

    let mut out = String::from("Server certificate:\n");
    let mut field = |label: &str, value: &str| {
        let _ = writeln!(out, "\t{:<LABEL_WIDTH$}{value}", format!("{label}:"));
    };
    field("Subject", &render_name(cert.subject()));
    field("Issuer", &render_name(cert.issuer()));
    field(
        "Valid from",
        &format!("{}  GMT", date_time(validity.not_before.timestamp())),
    );
    field(
        "Valid to",
        &format!("{}  GMT", date_time(validity.not_after.timestamp())),
    );
    field("Fingerprint", &fingerprint(der));
    field("Root CA", root_ca);
    field("Version", &(cert.version().0 + 1).to_string());
    out.push_str("\tSerial Num:\n");
    let _ = writeln!(out, "\t\t{}", serial_text(&cert));
    out.push_str("\tExtensions:\n");
    for (index, extension) in cert.extensions().iter().enumerate() {
        if index > 0 {
            out.push('\n');
        }
        let label = |name: &str| format!("{name}:");
        let critical = if extension.critical { "yes" } else { "no" };
        let _ = writeln!(
            out,
            "\t\t{:<EXTENSION_LABEL_WIDTH$}{}",
            label("Name"),
            extension_name(extension)
        );
        let _ = writeln!(out, "\t\t{:<EXTENSION_LABEL_WIDTH$}{critical}", label("Critical"));
        out.push_str("\t\tContent:\n");
        let _ = writeln!(out, "\t\t{}", extension_content(extension));
    }
    Ok(out)
}

/// `C = US, ST = California, ..., CN = ems.lab.example`, in certificate order.
fn render_name(name: &X509Name<'_>) -> String {
    let mut parts = Vec::new();
    for rdn in name.iter_rdn() {
        for attribute in rdn.iter() {
            let oid = attribute.attr_type();
            let key = match oid2abbrev(oid, oid_registry()) {
                // OpenSSL, and FortiOS after it, spell the PKCS#9 e-mail attribute this way.
                Ok("Email") => "emailAddress".to_owned(),
                Ok(abbrev) => abbrev.to_owned(),
                Err(_) => oid.to_id_string(),
            };
            let value = attribute
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|_| String::from_utf8_lossy(attribute.as_slice()).into_owned());
            parts.push(format!("{key} = {value}"));
        }
    }
    parts.join(", ")
}

/// The serial number as lowercase hex pairs, as FortiOS prints it.
fn serial_text(cert: &X509Certificate<'_>) -> String {
    let raw = cert.raw_serial();
    if raw.is_empty() {
        "00".to_owned()
    } else {
        hex_pairs(raw, false)
    }
}

/// OpenSSL's long name for the extensions an EMS certificate carries, else the OID.
fn extension_name(extension: &X509Extension<'_>) -> String {
    let oid = extension.oid.to_id_string();
    let name = match oid.as_str() {
        "2.5.29.14" => "X509v3 Subject Key Identifier",
        "2.5.29.15" => "X509v3 Key Usage",
        "2.5.29.17" => "X509v3 Subject Alternative Name",
        "2.5.29.18" => "X509v3 Issuer Alternative Name",
        "2.5.29.19" => "X509v3 Basic Constraints",
        "2.5.29.30" => "X509v3 Name Constraints",
        "2.5.29.31" => "X509v3 CRL Distribution Points",
        "2.5.29.32" => "X509v3 Certificate Policies",
        "2.5.29.35" => "X509v3 Authority Key Identifier",
        "2.5.29.37" => "X509v3 Extended Key Usage",
        "1.3.6.1.5.5.7.1.1" => "Authority Information Access",
        _ => return oid,
    };
    name.to_owned()
}

/// One line describing the extension's value, OpenSSL style; raw hex when this renderer
/// does not know the extension.
fn extension_content(extension: &X509Extension<'_>) -> String {
    match extension.parsed_extension() {
        ParsedExtension::BasicConstraints(bc) => {
            let mut text = if bc.ca {
                "CA:TRUE".to_owned()
            } else {
                "CA:FALSE".to_owned()
            };
            if let Some(len) = bc.path_len_constraint {
                let _ = write!(text, ", pathlen:{len}");
            }
            text
        }
        ParsedExtension::SubjectKeyIdentifier(id) => hex_pairs(id.0, true),
        ParsedExtension::AuthorityKeyIdentifier(aki) => {
            let mut parts = Vec::new();
            if let Some(id) = &aki.key_identifier {
                parts.push(format!("keyid:{}", hex_pairs(id.0, true)));
            }
            if let Some(names) = &aki.authority_cert_issuer {
                parts.extend(names.iter().map(general_name));
            }
            if let Some(serial) = aki.authority_cert_serial {
                parts.push(format!("serial:{}", hex_pairs(serial, true)));
            }
            parts.join(", ")
        }
        ParsedExtension::SubjectAlternativeName(san) => san
            .general_names
            .iter()
            .map(general_name)
            .collect::<Vec<_>>()
            .join(", "),
        ParsedExtension::IssuerAlternativeName(ian) => ian
            .general_names
            .iter()
            .map(general_name)
            .collect::<Vec<_>>()
            .join(", "),
        ParsedExtension::KeyUsage(ku) => {
            let flags = [
                (ku.digital_signature(), "Digital Signature"),
                (ku.non_repudiation(), "Non Repudiation"),
                (ku.key_encipherment(), "Key Encipherment"),
                (ku.data_encipherment(), "Data Encipherment"),
                (ku.key_agreement(), "Key Agreement"),
                (ku.key_cert_sign(), "Certificate Sign"),
                (ku.crl_sign(), "CRL Sign"),
                (ku.encipher_only(), "Encipher Only"),
                (ku.decipher_only(), "Decipher Only"),
            ];
            flags
                .iter()
                .filter(|(set, _)| *set)
                .map(|(_, name)| *name)
                .collect::<Vec<_>>()
                .join(", ")
        }
        ParsedExtension::ExtendedKeyUsage(eku) => {
            let flags = [
                (eku.server_auth, "TLS Web Server Authentication"),
                (eku.client_auth, "TLS Web Client Authentication"),
                (eku.code_signing, "Code Signing"),
                (eku.email_protection, "E-mail Protection"),
                (eku.time_stamping, "Time Stamping"),
                (eku.ocsp_signing, "OCSP Signing"),
                (eku.any, "Any Extended Key Usage"),
            ];
            flags
                .iter()
                .filter(|(set, _)| *set)
                .map(|(_, name)| (*name).to_owned())
                .chain(eku.other.iter().map(|oid| oid.to_id_string()))
                .collect::<Vec<_>>()
                .join(", ")
        }
        _ => hex_pairs(extension.value, true),
    }
}

/// One subject/issuer alternative name, OpenSSL style (`DNS:`, `IP Address:`, ...).
fn general_name(name: &GeneralName<'_>) -> String {
    match name {
        GeneralName::DNSName(dns) => format!("DNS:{dns}"),
        GeneralName::RFC822Name(email) => format!("email:{email}"),
        GeneralName::URI(uri) => format!("URI:{uri}"),
        GeneralName::IPAddress(bytes) => {
            let ip = match bytes.len() {
                4 => <[u8; 4]>::try_from(*bytes)
                    .map(|b| Ipv4Addr::from(b).to_string())
                    .ok(),
                16 => <[u8; 16]>::try_from(*bytes)
                    .map(|b| Ipv6Addr::from(b).to_string())
                    .ok(),
                _ => None,
            };
            format!("IP Address:{}", ip.unwrap_or_else(|| "<invalid>".to_owned()))
        }
        GeneralName::DirectoryName(dn) => format!("DirName:{}", render_name(dn)),
        GeneralName::RegisteredID(oid) => format!("Registered ID:{}", oid.to_id_string()),
        GeneralName::OtherName(..) => "othername:<unsupported>".to_owned(),
        GeneralName::X400Address(..) => "X400Name:<unsupported>".to_owned(),
        GeneralName::EDIPartyName(..) => "EdiPartyName:<unsupported>".to_owned(),
        GeneralName::Invalid(..) => "<invalid>".to_owned(),
    }
}

/// Bytes as two-digit hex joined by `:`.
fn hex_pairs(bytes: &[u8], uppercase: bool) -> String {
    bytes
        .iter()
        .map(|b| {
            if uppercase {
                format!("{b:02X}")
            } else {
                format!("{b:02x}")
            }
        })
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connector::test_ems::TestPki;

    #[test]
    fn fingerprint_is_uppercase_sha256_pairs() {
        let print = fingerprint(b"abc");
        assert_eq!(
            print,
            "BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:\
             B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD"
        );
        assert_eq!(print.split(':').count(), 32);
    }

    #[test]
    fn renders_every_field_of_an_ems_certificate() {
        let pki = TestPki::new();
        let leaf = pki.trusted_leaf();
        let text = render_certificate(leaf.der()).expect("renders");
        let expected_lines = [
            "Server certificate:".to_owned(),
            "\tSubject:     C = US, ST = California, L = Sunnyvale, O = Fortinet, \
             OU = FortiClientEMS, CN = ems.lab.example"
                .to_owned(),
            "\tIssuer:      CN = fabricsim Fabric CA".to_owned(),
            "\tValid from:  2025-01-01 00:00:00  GMT".to_owned(),
            "\tValid to:    2099-12-31 00:00:00  GMT".to_owned(),
            format!("\tFingerprint: {}", fingerprint(leaf.der())),
            "\tRoot CA:     No".to_owned(),
            "\tVersion:     3".to_owned(),
            "\tSerial Num:".to_owned(),
            "\t\t4a:1f:00:01".to_owned(),
            "\tExtensions:".to_owned(),
            "\t\tName:     X509v3 Subject Alternative Name".to_owned(),
            "\t\tCritical: no".to_owned(),
            "\t\tContent:".to_owned(),
            "\t\tDNS:ems.lab.example, DNS:*.ems.lab.example, IP Address:127.0.0.1".to_owned(),
            "\t\tDigital Signature, Key Encipherment".to_owned(),
            "\t\tTLS Web Server Authentication".to_owned(),
            "\t\tName:     X509v3 Basic Constraints".to_owned(),
            "\t\tCA:FALSE".to_owned(),
            "\t\tName:     X509v3 Subject Key Identifier".to_owned(),
            "\t\tName:     X509v3 Authority Key Identifier".to_owned(),
        ];
        for line in &expected_lines {
            assert!(
                text.lines().any(|l| l == line),
                "missing line {line:?} in\n{text}"
            );
        }
        assert!(
            text.lines().any(|l| l.starts_with("\t\tkeyid:") && l.len() > 20),
            "{text}"
        );
        assert!(text.ends_with('\n'));
        assert!(!text.ends_with("\n\n"));
        assert_eq!(render_certificate(leaf.der()), Ok(text));
    }

    #[test]
    fn self_signed_certificate_is_a_root() {
        let pki = TestPki::new();
        let text = render_certificate(pki.self_signed_leaf().der()).expect("renders");
        assert!(text.contains("\tRoot CA:     Yes\n"), "{text}");
        let ca_text = render_certificate(pki.ca_der()).expect("renders");
        assert!(ca_text.contains("\t\tCA:TRUE\n"), "{ca_text}");
        assert!(ca_text.contains("Certificate Sign, CRL Sign"), "{ca_text}");
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        let error = render_certificate(b"not a certificate").expect_err("rejects");
        assert!(error.starts_with("not an X.509 certificate"), "{error}");
    }
}
