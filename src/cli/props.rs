//! Property tests: any line, and any sequence of lines, gets an answer from the tokenizer
//! and the session, never a panic; a line that fails leaves the configuration (revision
//! and hash) as it was. Lines are drawn from arbitrary text and from the grammar's own
//! words mixed with quotes, escapes, `?`, `|`, unicode and very long tokens. The seed is
//! fixed, so every run draws the same cases.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

use super::test_backend::MemoryBackend;
use super::tokenize::{help_request, parse_line, split_partial};
use super::{Backend as _, Session};

/// A fixed seed and `cases` cases, persisting nothing.
fn config(cases: u32) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(0x05ee_dc11),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Words the grammar knows, values that sit on the edges of their fields, and the
/// characters the tokenizer treats specially.
const WORDS: &[&str] = &[
    "config",
    "edit",
    "set",
    "unset",
    "next",
    "end",
    "abort",
    "show",
    "get",
    "delete",
    "purge",
    "execute",
    "diagnose",
    "endpoint-control",
    "fctems",
    "system",
    "csf",
    "settings",
    "status",
    "console",
    "admin",
    "api-user",
    "vpn",
    "certificate",
    "remote",
    "global",
    "verify",
    "unverify",
    "is-verified",
    "test-connectivity",
    "generate-key",
    "update",
    "info",
    "test",
    "server",
    "https-port",
    "source-ip",
    "name",
    "ems-id",
    "serial-number",
    "tenant-id",
    "capabilities",
    "call-timeout",
    "interface-select-method",
    "interface",
    "output",
    "configuration-sync",
    "local",
    "default",
    "enable",
    "disable",
    "specify",
    "auto",
    "full-configuration",
    "ems1",
    "ems2",
    "ems3",
    "ems4",
    "REMOTE_Cert_1",
    "0",
    "1",
    "5",
    "7",
    "8",
    "65535",
    "65536",
    "-1",
    "18446744073709551616",
    "10.0.0.1",
    "256.0.0.1",
    "0.0.0.0",
    "ems.example.com",
    "y",
    "n",
    "|",
    "grep",
    "-i",
    "-v",
    "-f",
    "?",
    "\"",
    "'",
    "\\",
    "\"\"",
    "''",
    "\"a b\"",
    "'x y'",
    "a\\ b",
    "\\\"",
    "é",
    "✓",
    "\u{0}",
    "\t",
    "\r",
    "日本語",
    "🦀",
];

/// Where a sequence starts: lines that enter the contexts whose verbs are richest.
const CONTEXTS: &[&[&str]] = &[
    &[],
    &["config endpoint-control fctems", "edit ems1"],
    &[
        "config endpoint-control fctems",
        "edit ems1",
        "set server 10.0.0.1",
        "next",
        "edit ems1",
    ],
    &["config system csf"],
    &["config vpn certificate remote", "edit REMOTE_Cert_1"],
    &["config system api-user", "edit api1"],
    &["config system settings"],
];

/// One line: a handful of words and odd pieces joined by spaces or nothing.
fn grammar_line() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        6 => proptest::sample::select(WORDS).prop_map(str::to_owned),
        1 => "[a-z0-9\\-]{1,12}",
        1 => "\\PC{0,8}",
        1 => (1usize..3000).prop_map(|n| "x".repeat(n)),
    ];
    (proptest::collection::vec(piece, 0..8), any::<bool>())
        .prop_map(|(pieces, tight)| pieces.join(if tight { "" } else { " " }))
}

/// Any line: arbitrary text or grammar-shaped.
fn any_line() -> impl Strategy<Value = String> {
    prop_oneof![1 => any::<String>(), 3 => grammar_line()]
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn the_tokenizer_answers_every_line(line in any_line()) {
        let _ = parse_line(&line);
        let _ = split_partial(&line);
        let _ = help_request(&line);
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn every_sequence_of_lines_gets_an_answer_and_a_failure_changes_nothing(
        context in proptest::sample::select(CONTEXTS),
        lines in proptest::collection::vec(any_line(), 1..16),
        root in any::<bool>(),
    ) {
        let lines: Vec<String> = context.iter().map(|line| (*line).to_owned()).chain(lines).collect();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let backend = if root { MemoryBackend::root() } else { MemoryBackend::branch1() };
        let mut session = Session::new();
        runtime.block_on(async {
            for line in &lines {
                let _ = session.complete(&backend, line);
                let _ = session.help(&backend, line);
                let before = backend.config();
                let reply = session.execute(&backend, line).await;
                let after = backend.config();
                if reply.failed {
                    prop_assert!(!reply.output.is_empty(), "{line:?} failed silently");
                    prop_assert_eq!(after.revision(), before.revision(), "{:?} failed but wrote", line);
                    prop_assert_eq!(after.hash(), before.hash(), "{:?} failed but wrote", line);
                }
                let _ = session.prompt(backend.identity());
            }
            Ok(())
        })?;
    }
}
