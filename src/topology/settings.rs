//! Rules of the tables that hold settings rather than entries: `[fabric]`, `[raft]`
//! (timings in a workable order), `[checks]` and `[bootstrap]`. Each turns its table into
//! the validated settings, with the defaults filled in.

use super::file::{BootstrapTable, ChecksTable, FabricTable, RaftTable, Read};
use super::reader::Reader;
use super::spec::{
    CheckSettings, DEFAULT_CHECK_INTERVAL_SECS, DEFAULT_ELECTION_TIMEOUT_MAX_MS,
    DEFAULT_ELECTION_TIMEOUT_MIN_MS, DEFAULT_HEARTBEAT_MS, DEFAULT_KEEP_LOGS, DEFAULT_SNAPSHOT_EVERY,
    DEFAULT_VOTERS, FabricSettings, RaftSettings,
};
use crate::domain::Firmware;
use toml::Spanned;

impl Reader<'_> {
    pub(super) fn fabric_settings(&mut self, fabric: Option<Read<FabricTable>>) -> Option<FabricSettings> {
        let fabric = fabric?.table;
        if let Some(name) = &fabric.name {
            self.check_name("fabric name", "lab", name);
        }
        let firmware = match &fabric.firmware {
            None => Some(Firmware::default()),
            Some(text) => match Firmware::parse(text.get_ref()) {
                Ok(firmware) => Some(firmware),
                Err(error) => {
                    self.report(
                        &text.span(),
                        format!("firmware = {:?}: {error}", text.get_ref()),
                        format!(
                            "write one of {}; \"7.0.12\" keys fctems by ems-id, \"7.0.7\" by name",
                            Firmware::accepted()
                        ),
                    );
                    None
                }
            },
        };
        Some(FabricSettings {
            name: fabric.name?.into_inner(),
            voters: fabric.voters.map_or(DEFAULT_VOTERS, |voters| voters.into_inner()),
            firmware: firmware?,
        })
    }

    pub(super) fn raft_settings(&mut self, raft: Option<Read<RaftTable>>) -> RaftSettings {
        let Some(Read {
            header,
            table,
            rejected,
        }) = raft
        else {
            return RaftSettings::default();
        };
        // A rule is checked only when none of its keys was rejected as wrongly typed: the
        // default standing in for a rejected key would make the rule misfire.
        let usable = |keys: &[&str]| keys.iter().all(|key| !rejected.contains(key));
        let value = |field: &Option<Spanned<u64>>, default: u64| {
            field.as_ref().map_or(default, |value| *value.get_ref())
        };
        let settings = RaftSettings {
            heartbeat_ms: value(&table.heartbeat_ms, DEFAULT_HEARTBEAT_MS),
            election_timeout_min_ms: value(&table.election_timeout_min_ms, DEFAULT_ELECTION_TIMEOUT_MIN_MS),
            election_timeout_max_ms: value(&table.election_timeout_max_ms, DEFAULT_ELECTION_TIMEOUT_MAX_MS),
            snapshot_every: value(&table.snapshot_every, DEFAULT_SNAPSHOT_EVERY),
            keep_logs: value(&table.keep_logs, DEFAULT_KEEP_LOGS),
        };
        // A rule between two keys is reported at the later of them that is written.
        let at = |fields: [&Option<Spanned<u64>>; 2]| {
            fields
                .into_iter()
                .flatten()
                .map(|field| field.span())
                .max_by_key(|span| span.start)
                .unwrap_or_else(|| header.clone())
        };
        // Each key's range is checked as it is read (`file::RAFT`); these rules are
        // between keys.
        if settings.election_timeout_min_ms <= settings.heartbeat_ms
            && usable(&["heartbeat_ms", "election_timeout_min_ms"])
        {
            self.report(
                &at([&table.heartbeat_ms, &table.election_timeout_min_ms]),
                format!(
                    "election_timeout_min_ms ({}) must be greater than heartbeat_ms ({}), or \
                     followers start elections between heartbeats",
                    settings.election_timeout_min_ms, settings.heartbeat_ms
                ),
                format!(
                    "write election_timeout_min_ms = {} (four heartbeats) or lower heartbeat_ms",
                    settings.heartbeat_ms.saturating_mul(4)
                ),
            );
        }
        if settings.election_timeout_max_ms <= settings.election_timeout_min_ms
            && usable(&["election_timeout_min_ms", "election_timeout_max_ms"])
        {
            self.report(
                &at([&table.election_timeout_min_ms, &table.election_timeout_max_ms]),
                format!(
                    "election_timeout_max_ms ({}) must be greater than election_timeout_min_ms ({})",
                    settings.election_timeout_max_ms, settings.election_timeout_min_ms
                ),
                format!(
                    "write election_timeout_max_ms = {} (twice the lower bound)",
                    settings.election_timeout_min_ms.saturating_mul(2)
                ),
            );
        }
        settings
    }

    pub(super) fn check_settings(&mut self, checks: Option<Read<ChecksTable>>) -> CheckSettings {
        let Some(checks) = checks else {
            return CheckSettings::default();
        };
        // The range of `interval_secs` is checked as it is read (`file::CHECKS`).
        let interval = checks.table.interval_secs;
        CheckSettings {
            interval_secs: interval.map_or(DEFAULT_CHECK_INTERVAL_SECS, Spanned::into_inner),
        }
    }

    /// The root's bootstrap lines; each must be one CLI line.
    pub(super) fn bootstrap_lines(&mut self, bootstrap: Option<Read<BootstrapTable>>) -> Vec<String> {
        let lines = bootstrap.and_then(|read| read.table.root).unwrap_or_default();
        for line in &lines {
            if line.get_ref().contains(['\n', '\r']) {
                let parts: Vec<String> = line
                    .get_ref()
                    .lines()
                    .map(str::trim)
                    .filter(|part| !part.is_empty())
                    .map(|part| format!("{part:?}"))
                    .collect();
                self.report(
                    &line.span(),
                    "a [bootstrap] line holds a line break",
                    format!(
                        "write each CLI line as its own string: root = [{}]",
                        parts.join(", ")
                    ),
                );
            }
        }
        lines.into_iter().map(Spanned::into_inner).collect()
    }
}
