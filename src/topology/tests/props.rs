//! Property tests of the reader: any text, and the real topologies of `cluster-configs/`
//! mutated (numbers at the edges of their types, values of the wrong type, lines
//! duplicated or dropped, the file cut short, garbage spliced in), gives a topology or
//! problems that each point into the text (`file:line:column`), never a panic. The seed is
//! fixed, so every run draws the same cases.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

use super::*;

const EMS_CLOUD_TOML: &str = include_str!("../../../cluster-configs/ems-cloud.toml");

const REAL_FILES: &[&str] = &[
    DEFAULT_TOML,
    TEN_NODES_TOML,
    EMS_UNTRUSTED_TOML,
    EMS_UNAUTHORIZED_TOML,
    EMS_CLOUD_TOML,
];

/// Values written in place of another: the edges of the integer types, floats, values of
/// every other TOML type, and broken ones.
const REPLACEMENTS: &[&str] = &[
    "0",
    "-1",
    "1",
    "255",
    "256",
    "65535",
    "65536",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551616",
    "99999999999999999999999999999999999999999",
    "0x7fffffffffffffff",
    "0o777",
    "0b1",
    "1e400",
    "-0.0",
    "nan",
    "inf",
    "1.5",
    "true",
    "\"\"",
    "\"5\"",
    "\"127.0.0.1:99999\"",
    "\"FGVM01TM2200000\"",
    "\"é✓🦀\"",
    "[]",
    "[1, \"a\"]",
    "{}",
    "{ a = 1 }",
    "1979-05-27T07:32:00Z",
    "\"",
    "",
];

/// Checks what parsing `text` gave: a topology, or problems inside the text.
fn answered(text: &str) -> Result<(), TestCaseError> {
    match parse(text) {
        Ok(_) => Ok(()),
        Err(TopologyError::Invalid { problems, .. }) => {
            prop_assert!(!problems.is_empty(), "invalid without a problem");
            let lines = text.split('\n').count();
            for problem in &problems {
                prop_assert!(
                    problem.line >= 1 && problem.line <= lines && problem.column >= 1,
                    "{problem:?} is outside the text of {lines} lines"
                );
                prop_assert!(
                    !problem.message.is_empty() && !problem.fix.is_empty(),
                    "{problem:?}"
                );
            }
            Ok(())
        }
        Err(other) => Err(TestCaseError::fail(format!("parse gave {other:?}"))),
    }
}

/// One change to a real file, chosen by `what` at the byte or line `at` (modulo the size).
fn mutate(text: &str, what: u8, at: usize, value: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let line = at % lines.len().max(1);
    let boundary = |at: usize| {
        let mut at = at % (text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        at
    };
    match what % 5 {
        // The value of one `key = value` line replaced.
        0 => {
            let mut out: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
            let assignments: Vec<usize> = (0..lines.len())
                .filter(|&i| !lines[i].trim_start().starts_with('#') && lines[i].contains(" = "))
                .collect();
            if let Some(&i) = assignments.get(at % assignments.len().max(1)) {
                let key = lines[i].split(" = ").next().unwrap_or_default();
                out[i] = format!("{key} = {value}");
            }
            out.join("\n")
        }
        // One line written twice: a duplicated key or table.
        1 => {
            let mut out = lines.clone();
            if let Some(copy) = lines.get(line) {
                out.insert(line, copy);
            }
            out.join("\n")
        }
        // One line dropped.
        2 => {
            let mut out = lines.clone();
            if line < out.len() {
                out.remove(line);
            }
            out.join("\n")
        }
        // The file cut short.
        3 => text[..boundary(at)].to_owned(),
        // Garbage spliced in.
        _ => {
            let at = boundary(at);
            format!("{}{value}{}", &text[..at], &text[at..])
        }
    }
}

proptest! {
    #![proptest_config(Config {
        cases: 256,
        rng_seed: RngSeed::Fixed(0x70b0_1a9e),
        failure_persistence: None,
        ..Config::default()
    })]

    #[test]
    fn any_text_gives_a_topology_or_problems_inside_it(text in any::<String>()) {
        answered(&text)?;
    }

    #[test]
    fn mutated_real_files_give_a_topology_or_problems_inside_them(
        file in proptest::sample::select(REAL_FILES),
        changes in proptest::collection::vec(
            (any::<u8>(), any::<usize>(), proptest::sample::select(REPLACEMENTS)),
            1..4,
        ),
    ) {
        let mut text = file.to_owned();
        for (what, at, value) in changes {
            text = mutate(&text, what, at, value);
        }
        answered(&text)?;
    }
}
