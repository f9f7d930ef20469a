//! The CLI's rules for programs: what the REST API calls so that a change made over HTTP
//! goes through exactly the checks, commits and error texts of the same change typed at
//! the prompt.
//!
//! An [`Edit`] is `edit <key>` (or `config <object>`) followed by `set`/`unset` and `end`:
//! it opens the entry as the CLI does, assigns each value through the CLI's own parsing,
//! and commits through the CLI's commit path (permission, EMS Cloud prerequisites,
//! [`Backend::commit`]). [`delete`], [`fetch_offer`], [`trust_offer`], [`unverify`] and
//! [`generate_key`] are `delete <key>`, the steps of `execute fctems verify|unverify` and
//! `execute api-user generate-key`. Every refusal leaves
//! as a [`Refusal`]: the lines FortiOS prints and the return code they end with.

use crate::config::schema::{TableKind, TableSchema};
use crate::config::{Applied, ConfigCommand, RC_NOT_FOUND};
use crate::connector::forticloud::CloudRecord;
use crate::connector::{CertificateOffer, EmsStatus};

use super::backend::Backend;
use super::commit::{commit, commit_pending, require_modify};
use super::context::Pending;
use super::dispatch::{entry_key, in_datasource, set_value};
use super::error::CliError;
use super::execute::{self, Question};

/// Why the CLI refused a change: what FortiOS prints, and its return code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The printed lines, the last one `Command fail. Return code <code>` when there is a
    /// code.
    pub lines: Vec<String>,
    /// The negative return code; 0 for a failure FortiOS prints without one.
    pub code: i32,
}

impl Refusal {
    /// Whether the refusal is "entry not found in datasource" for the entry the request
    /// names. A value naming a missing entry of another table (`certificate`) fails with
    /// the same code, but the request's own entry exists: FortiOS then adds
    /// `value parse error before '<value>'`.
    pub fn is_not_found(&self) -> bool {
        self.code == RC_NOT_FOUND
            && !self
                .lines
                .iter()
                .any(|line| line.starts_with("value parse error"))
    }

    /// The first printed line: what is wrong, without FortiOS's `node_check_object` and
    /// return-code lines; what a form shows beside its fields.
    pub fn reason(&self) -> String {
        self.lines.first().cloned().unwrap_or_default()
    }
}

impl From<CliError> for Refusal {
    fn from(error: CliError) -> Self {
        let lines = error.lines();
        let code = lines
            .last()
            .and_then(|line| line.strip_prefix("Command fail. Return code "))
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        Refusal { lines, code }
    }
}

/// One entry (or object) being edited, as between `edit` and `end`.
pub struct Edit {
    pending: Pending,
    created: bool,
}

impl Edit {
    /// `edit <key>` in `table`, or `config <table>` for an object (`key` empty): the
    /// stored values, or a new entry when this node may add one.
    pub fn open<B: Backend>(backend: &B, table: &'static TableSchema, key: &str) -> Result<Edit, Refusal> {
        if table.kind == TableKind::Object {
            let values = backend
                .config()
                .entry(table.path, "")
                .map(|entry| entry.values().clone())
                .unwrap_or_default();
            let pending = Pending {
                table,
                key: String::new(),
                values,
            };
            return Ok(Edit {
                pending,
                created: false,
            });
        }
        let key = entry_key(table, key)?;
        if let Some(entry) = backend.config().entry(table.path, &key) {
            let values = entry.values().clone();
            return Ok(Edit {
                pending: Pending { table, key, values },
                created: false,
            });
        }
        require_modify(backend, table)?;
        let values = Default::default();
        Ok(Edit {
            pending: Pending { table, key, values },
            created: true,
        })
    }

    /// The entry's canonical key.
    pub fn key(&self) -> &str {
        &self.pending.key
    }

    /// Whether `open` made a new entry.
    pub fn created(&self) -> bool {
        self.created
    }

    /// `set <field> <words>`.
    pub fn set<B: Backend>(&mut self, backend: &B, field: &str, words: &[String]) -> Result<(), Refusal> {
        let spec = self.pending.settable(field)?;
        let value = set_value(spec, words)?;
        in_datasource(backend, self.pending.table, spec, &value)?;
        require_modify(backend, self.pending.table)?;
        self.pending.assign(spec, value);
        Ok(())
    }

    /// `unset <field>`.
    pub fn unset<B: Backend>(&mut self, backend: &B, field: &str) -> Result<(), Refusal> {
        let spec = self.pending.settable(field)?;
        require_modify(backend, self.pending.table)?;
        self.pending.assign(spec, spec.default.to_owned());
        Ok(())
    }

    /// `end`: commits the entry when it changed; `None` when nothing did.
    pub async fn commit<B: Backend>(&self, backend: &B) -> Result<Option<Applied>, Refusal> {
        if self.created && self.pending.values.is_empty() {
            // A new entry with only defaults is still a new entry: `edit x` then `end`.
            require_modify(backend, self.pending.table)?;
            let command = ConfigCommand::SetEntry {
                table: self.pending.table.path.to_owned(),
                key: self.pending.key.clone(),
                values: Default::default(),
            };
            return Ok(Some(commit(backend, command).await?));
        }
        Ok(commit_pending(backend, &self.pending).await?)
    }
}

/// `delete <key>` in `table`.
pub async fn delete<B: Backend>(
    backend: &B,
    table: &'static TableSchema,
    key: &str,
) -> Result<Applied, Refusal> {
    require_modify(backend, table)?;
    let command = ConfigCommand::DeleteEntry {
        table: table.path.to_owned(),
        key: key.to_owned(),
    };
    Ok(commit(backend, command).await?)
}

/// The first step of `execute fctems verify <entry>`: the certificate the entry's EMS
/// presents to this node.
pub async fn fetch_offer<B: Backend>(backend: &B, entry: &str) -> Result<CertificateOffer, Refusal> {
    let key = execute::entry_key(backend, entry)?;
    require_modify(backend, backend.config().fctems())?;
    Ok(backend.fetch_certificate(&key).await.map_err(CliError::Failed)?)
}

/// Answering `y` to `execute fctems verify <entry>`: trusts `offer` fabric-wide.
pub async fn trust_offer<B: Backend>(
    backend: &B,
    entry: &str,
    offer: CertificateOffer,
) -> Result<(), Refusal> {
    let question = Question::new(execute::entry_key(backend, entry)?, offer);
    execute::answer(backend, question, "y").await?;
    Ok(())
}

/// `execute api-user generate-key <name>`: the new key, shown once.
pub async fn generate_key<B: Backend>(backend: &B, name: &str) -> Result<String, Refusal> {
    Ok(execute::new_api_key(backend, name).await?)
}

/// `execute fctems unverify <entry>`: what it prints.
pub async fn unverify<B: Backend>(backend: &B, entry: &str) -> Result<Vec<String>, Refusal> {
    let key = execute::entry_key(backend, entry)?;
    Ok(execute::unverify(backend, &key).await?)
}

/// Why this node may not change `table`, as FortiOS says it (a member's synced table);
/// `None` when it may. The GUI shows the form read-only with this reason.
pub fn modify_refusal<B: Backend>(backend: &B, table: &TableSchema) -> Option<Refusal> {
    require_modify(backend, table).err().map(Refusal::from)
}

/// Why FortiGate `serial` may not turn on EMS Cloud (not registered to FortiCloud, or no
/// valid EMS Cloud entitlement), given what FortiCloud answered about it, in the words of
/// the CLI's refusal; `None` when it may.
pub fn ems_cloud_refusal(serial: &str, record: &Result<CloudRecord, String>) -> Option<Refusal> {
    super::ems_cloud::ems_cloud_allowed(serial, record)
        .err()
        .map(Refusal::from)
}

/// `diagnose endpoint fctems test-connectivity <entry>`: checks the entry now, from this
/// node, and returns what it found (which also becomes the node's reported status).
pub async fn test_connectivity<B: Backend>(backend: &B, entry: &str) -> Result<EmsStatus, Refusal> {
    Ok(execute::test_connectivity(backend, entry).await?)
}
