//! `execute` and `diagnose` subcommands: the EMS connector's certificate confirmation
//! (`execute fctems verify|unverify|is-verified`), its on-demand check
//! (`diagnose endpoint fctems test-connectivity`) and FortiCloud's view of this FortiGate
//! (`diagnose test update info`), and a REST API user's new key
//! (`execute api-user generate-key`). Which words name which [`Task`] is the
//! [`super::grammar`] table; this file runs the task.
//!
//! `execute fctems verify` is the one command that asks a question. It fetches the
//! certificate the EMS presents to this node, prints it as FortiOS does and leaves a
//! [`Question`] in the session; the next line is the answer. `y` pins the certificate
//! fabric-wide: one [`ConfigCommand::Batch`] adds it to `vpn certificate remote` as
//! `REMOTE_Cert_<n>` and records its name, the EMS serial and the EMS capabilities in the
//! fctems entry.

use std::collections::BTreeMap;

use super::backend::Backend;
use super::commit::{commit, require_modify};
use super::error::CliError;
use super::format::{self, contract_date};
use super::grammar::{Subcommand, Task, no_args, one_arg, resolve_subcommand};
use crate::config::schema::{FCTEMS, REMOTE_CERTIFICATES, SYSTEM_API_USER};
use crate::config::{ConfigCommand, ConfigDb, hash_secret};
use crate::connector::CertificateOffer;
use crate::connector::EmsStatus;
use crate::domain::API_KEY_LEN;

/// The question `execute fctems verify` asks before it trusts a certificate.
pub const VERIFY_QUESTION: &str = "EMS configuration needs user to confirm server certificate. \
     Do you wish to add the above certificate to trusted remote certificates? (y/n)";

/// What FortiOS prints when the certificate chains to no installed CA (the seed's text,
/// then what real devices add).
const UNTRUSTED_LINES: &[&str] = &[
    "certificate not configured/verified: 2 Could not verify server certificate based on current certificate authorities. Error 1--5208",
    "Error in requesting EMS fabric connection: -4",
    "issue in getting capabilities. EMS server certificate is not signed by any known CA.",
];

/// Name prefix FortiOS gives certificates accepted from a remote server.
const REMOTE_CERT_PREFIX: &str = "REMOTE_Cert_";

/// A question waiting for the administrator's answer.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Question {
    entry: String,
    offer: CertificateOffer,
}

impl Question {
    /// The question of accepting `offer`, the certificate fctems entry `entry`'s EMS
    /// presented.
    pub(super) fn new(entry: String, offer: CertificateOffer) -> Question {
        Question { entry, offer }
    }
}

/// What a command printed and, for `execute fctems verify`, the question it leaves open.
pub(super) struct Printed {
    pub(super) lines: Vec<String>,
    pub(super) question: Option<Question>,
}

impl Printed {
    /// Output that asks nothing.
    pub(super) fn print(lines: Vec<String>) -> Printed {
        Printed {
            lines,
            question: None,
        }
    }
}

/// Runs the subcommand of `subcommands` that `args` name (`execute` and `diagnose`).
pub(super) async fn run<B: Backend>(
    backend: &B,
    subcommands: &'static [Subcommand],
    args: &[String],
) -> Result<Printed, CliError> {
    let (command, rest) = resolve_subcommand(subcommands, args)?;
    let word = match command.entry_of {
        Some(_) => one_arg(rest)?,
        None => no_args(rest).map(|()| "")?,
    };
    // An fctems entry is named by its key (a name, or an ems-id) or, keyed by ems-id, by
    // its name field; the fctems tasks work on the key.
    match command.task {
        Task::Verify => verify(backend, &entry_key(backend, word)?).await,
        Task::Unverify => unverify(backend, &entry_key(backend, word)?)
            .await
            .map(Printed::print),
        Task::IsVerified => Ok(Printed::print(is_verified(backend, &entry_key(backend, word)?))),
        Task::GenerateKey => generate_key(backend, word).await.map(Printed::print),
        Task::UpdateInfo => update_info(backend).await.map(Printed::print),
        Task::PendingList => Ok(Printed::print(format::pending_list(
            &backend.identity().serial,
            &backend.pending_members(),
        ))),
        Task::TestConnectivity => {
            let status = test_connectivity(backend, word).await?;
            Ok(Printed::print(connectivity_lines(&status)))
        }
    }
}

/// `diagnose endpoint fctems test-connectivity <entry>`: checks the entry now, from this
/// node (the result also becomes the node's reported status).
pub(super) async fn test_connectivity<B: Backend>(backend: &B, entry: &str) -> Result<EmsStatus, CliError> {
    let key = entry_key(backend, entry)?;
    backend.test_connectivity(&key).await.map_err(CliError::Failed)
}

/// The answer to an open question: `y` (or `Y`) accepts, anything else declines.
pub(super) async fn answer<B: Backend>(
    backend: &B,
    question: Question,
    line: &str,
) -> Result<Vec<String>, CliError> {
    if !matches!(line.trim(), "y" | "Y") {
        return Ok(Vec::new());
    }
    let db = backend.config();
    let Some(entry) = db.entry(FCTEMS.path, &question.entry) else {
        return Err(CliError::Failed(format!(
            "EMS entry {} no longer exists.",
            db.fctems_label(&question.entry)
        )));
    };
    let existing = db
        .entries(REMOTE_CERTIFICATES.path)
        .find(|(_, cert)| cert.get("remote") == Some(question.offer.pem.as_str()))
        .map(|(name, _)| name.to_owned());
    let mut commands = Vec::new();
    let cert_name = match existing {
        Some(name) => name,
        None => {
            let name = unused_certificate_name(&db);
            commands.push(ConfigCommand::SetEntry {
                table: REMOTE_CERTIFICATES.path.to_owned(),
                key: name.clone(),
                values: BTreeMap::from([("remote".to_owned(), question.offer.pem.clone())]),
            });
            name
        }
    };
    let mut values = entry.values().clone();
    values.insert("certificate".to_owned(), cert_name);
    if let Some(serial) = &question.offer.ems_serial {
        values.insert("serial-number".to_owned(), serial.clone());
    }
    if !question.offer.capabilities.is_empty() {
        values.insert("capabilities".to_owned(), question.offer.capabilities.join(" "));
    }
    commands.push(ConfigCommand::SetEntry {
        table: FCTEMS.path.to_owned(),
        key: question.entry.clone(),
        values,
    });
    commit(backend, ConfigCommand::Batch(commands)).await?;
    Ok(Vec::new())
}

async fn verify<B: Backend>(backend: &B, name: &str) -> Result<Printed, CliError> {
    require_modify(backend, backend.config().fctems())?;
    let offer = backend.fetch_certificate(name).await.map_err(CliError::Failed)?;
    if pinned_for(backend, name, &offer).is_some() {
        return Ok(Printed::print(vec!["EMS already verified.".to_owned()]));
    }
    let mut lines: Vec<String> = offer.rendered.lines().map(str::to_owned).collect();
    if !offer.trusted_by_ca {
        lines.extend(UNTRUSTED_LINES.iter().map(|line| (*line).to_owned()));
    }
    lines.push(VERIFY_QUESTION.to_owned());
    Ok(Printed {
        lines,
        question: Some(Question {
            entry: name.to_owned(),
            offer,
        }),
    })
}

pub(super) async fn unverify<B: Backend>(backend: &B, name: &str) -> Result<Vec<String>, CliError> {
    let db = backend.config();
    require_modify(backend, db.fctems())?;
    let entry = db.entry(FCTEMS.path, name).expect("entry_key found it");
    let Some(cert) = entry.get("certificate").map(str::to_owned) else {
        return Ok(vec![format!("EMS {} is not verified.", db.fctems_label(name))]);
    };
    let mut values = entry.values().clone();
    values.remove("certificate");
    let mut commands = vec![ConfigCommand::SetEntry {
        table: FCTEMS.path.to_owned(),
        key: name.to_owned(),
        values,
    }];
    let still_used = db
        .entries(FCTEMS.path)
        .any(|(other, entry)| other != name && entry.get("certificate") == Some(cert.as_str()));
    if !still_used && db.entry(REMOTE_CERTIFICATES.path, &cert).is_some() {
        commands.push(ConfigCommand::DeleteEntry {
            table: REMOTE_CERTIFICATES.path.to_owned(),
            key: cert,
        });
    }
    commit(backend, ConfigCommand::Batch(commands)).await?;
    Ok(Vec::new())
}

fn is_verified<B: Backend>(backend: &B, name: &str) -> Vec<String> {
    let db = backend.config();
    let verified = db
        .entry(FCTEMS.path, name)
        .and_then(|entry| entry.get("certificate"))
        .is_some_and(|cert| db.entry(REMOTE_CERTIFICATES.path, cert).is_some());
    let label = db.fctems_label(name);
    vec![if verified {
        format!("EMS {label} is verified.")
    } else {
        format!("EMS {label} is not verified.")
    }]
}

/// The remote certificate already pinned for `name` that equals what the EMS presents.
fn pinned_for<B: Backend>(backend: &B, name: &str, offer: &CertificateOffer) -> Option<String> {
    let db = backend.config();
    let cert = db.entry(FCTEMS.path, name)?.get("certificate")?.to_owned();
    let pem = db.entry(REMOTE_CERTIFICATES.path, &cert)?.get("remote")?;
    (pem == offer.pem).then_some(cert)
}

/// `execute api-user generate-key <name>`: a new random key replaces the user's key; the
/// key is printed once and stored only as its hash (`docs/fortios.md`, "Accounts").
async fn generate_key<B: Backend>(backend: &B, name: &str) -> Result<Vec<String>, CliError> {
    let key = new_api_key(backend, name).await?;
    Ok(vec![
        format!("New API key: {key}"),
        format!(
            "NOTE: The bearer of this API key will be granted all access privileges assigned to the api-user {name}."
        ),
    ])
}

/// Gives API user `name` a new random key, stored as its hash; returns the key.
pub(super) async fn new_api_key<B: Backend>(backend: &B, name: &str) -> Result<String, CliError> {
    let db = backend.config();
    let entry = db
        .entry(SYSTEM_API_USER.path, name)
        .ok_or_else(|| CliError::NotFound(name.to_owned()))?;
    require_modify(backend, &SYSTEM_API_USER)?;
    let key = random_api_key().map_err(CliError::Failed)?;
    let mut values = entry.values().clone();
    values.insert("api-key".to_owned(), hash_secret(&key));
    commit(
        backend,
        ConfigCommand::SetEntry {
            table: SYSTEM_API_USER.path.to_owned(),
            key: name.to_owned(),
            values,
        },
    )
    .await?;
    Ok(key)
}

/// [`API_KEY_LEN`] letters and digits from the system's secure random source.
fn random_api_key() -> Result<String, String> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    // Bytes at or above this multiple of the alphabet's size are dropped, so every letter
    // is equally likely.
    let limit = 256 - 256 % ALPHABET.len();
    let random = crate::wire::crypto_provider().secure_random;
    let mut key = String::with_capacity(API_KEY_LEN);
    while key.len() < API_KEY_LEN {
        let mut bytes = [0u8; 64];
        random
            .fill(&mut bytes)
            .map_err(|_| "The system's random source failed; no key was generated.".to_owned())?;
        key.extend(
            bytes
                .iter()
                .filter(|byte| usize::from(**byte) < limit)
                .map(|byte| char::from(ALPHABET[usize::from(*byte) % ALPHABET.len()]))
                .take(API_KEY_LEN - key.len()),
        );
    }
    Ok(key)
}

/// The key of the fctems entry `word` names (`docs/fortios.md`, "Firmware profiles").
pub(super) fn entry_key<B: Backend>(backend: &B, word: &str) -> Result<String, CliError> {
    backend
        .config()
        .fctems_key_of(word)
        .ok_or_else(|| CliError::NotFound(word.to_owned()))
}

/// The first `REMOTE_Cert_<n>` not in use.
fn unused_certificate_name(db: &ConfigDb) -> String {
    (1..)
        .map(|n| format!("{REMOTE_CERT_PREFIX}{n}"))
        .find(|name| db.entry(REMOTE_CERTIFICATES.path, name).is_none())
        .expect("some certificate number is free")
}

/// `diagnose test update info`: FortiCloud registration and the account's contracts, the
/// EMS Cloud entitlement as an `FCEM` line.
async fn update_info<B: Backend>(backend: &B) -> Result<Vec<String>, CliError> {
    let mut lines = Vec::new();
    match backend.forticloud().await {
        Ok(record) if record.registered => {
            lines.push(format!("FortiCloud account: {}", record.account));
            lines.push("Registration: registered".to_owned());
            lines.push("Account contracts:".to_owned());
            for contract in &record.contracts {
                let state = if contract.expired { " (expired)" } else { "" };
                lines.push(format!(
                    "\t{},{}{state}",
                    contract.kind,
                    contract_date(&contract.expires)
                ));
            }
        }
        Ok(_) => {
            lines.push("FortiCloud account: none".to_owned());
            lines.push("Registration: not registered".to_owned());
            lines.push("Account contracts:".to_owned());
        }
        Err(why) => {
            lines.push(format!("FortiCloud: unreachable ({why})"));
            lines.push("Registration: unknown".to_owned());
            lines.push("Account contracts:".to_owned());
        }
    }
    Ok(lines)
}

/// `diagnose endpoint fctems test-connectivity`: the connector status as the GUI's
/// Refresh shows it.
pub(super) fn connectivity_lines(status: &EmsStatus) -> Vec<String> {
    vec![
        format!("EMS: {} ({})", status.name, status.server),
        format!("Connection: {}", status.connection.label()),
        format!("Certificate: {}", status.certificate.label()),
        format!("FortiGate authorization: {}", status.device.label()),
        format!(
            "EMS serial: {}",
            status.ems_serial.as_deref().unwrap_or("unknown")
        ),
        format!("Detail: {}", status.detail),
    ]
}
