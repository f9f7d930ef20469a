//! The golden problem reports of `tests/topology/`: each `NAME.toml` is a topology file and
//! `NAME.txt` beside it the exact output of `fabricsim check -c tests/topology/NAME.toml`.
//! `UPDATE_GOLDEN=1` rewrites the `.txt` files from the current behaviour.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_fabricsim");

#[test]
fn check_reports_every_golden_topology_exactly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(root.join("tests/topology"))
        .expect("tests/topology exists")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no topologies in tests/topology");
    let update = std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1");
    let mut differ = Vec::new();
    for file in files {
        let relative = file.strip_prefix(root).unwrap();
        let out = Command::new(BIN)
            .current_dir(root)
            .args(["check", "-c"])
            .arg(relative)
            .output()
            .expect("fabricsim runs");
        assert!(
            out.stderr.is_empty(),
            "{}: {}",
            relative.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let rendered = String::from_utf8(out.stdout).expect("check prints UTF-8");
        let golden = file.with_extension("txt");
        if update {
            std::fs::write(&golden, &rendered).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_default();
        if rendered != expected {
            differ.push(diff(&golden, &expected, &rendered));
        }
    }
    assert!(
        differ.is_empty(),
        "{}\n(UPDATE_GOLDEN=1 rewrites the files)",
        differ.join("\n")
    );
}

/// The first differing line of a golden file and what `check` printed, with what follows.
fn diff(golden: &Path, expected: &str, rendered: &str) -> String {
    let line = rendered
        .lines()
        .zip(expected.lines())
        .position(|(got, want)| got != want)
        .unwrap_or_else(|| rendered.lines().count().min(expected.lines().count()));
    let tail = |text: &str| text.lines().skip(line).take(5).collect::<Vec<_>>().join("\n");
    format!(
        "{} differs from line {}:\n--- expected\n{}\n--- printed\n{}",
        golden.display(),
        line + 1,
        tail(expected),
        tail(rendered)
    )
}
