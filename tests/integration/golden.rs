//! The golden CLI transcripts of `tests/cli/`, played against a real fabric over gRPC.
//! The CLI's unit tests play the same files against an in-memory backend.

use std::path::Path;

use fabricsim::cli::transcript;
use fabricsim::domain::Firmware;
use fabricsim::harness::{Fabric, generated_topology};

use crate::CONVERGE;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_transcripts_hold_on_a_real_fabric() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cli");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/cli exists")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no transcripts in {}", dir.display());
    for file in files {
        // Transcripts with an `#! ems:` certificate need that exact certificate, and those
        // with FortiCloud contracts other than the generated topology's need those; the
        // CLI's unit tests play them.
        let text = std::fs::read_to_string(&file).unwrap();
        let other_contract = transcript::headers(&text, "cloud-contract")
            .iter()
            .any(|contract| *contract != "FCEM 2099-12-31");
        if text.contains("\n#! ems:") || other_contract {
            continue;
        }
        // A fresh fabric per transcript: each starts from an empty configuration, on the
        // release its `#! firmware:` header names (the default when it names none).
        let mut topology = generated_topology("golden", 2);
        if let Some(firmware) = transcript::headers(&text, "firmware").first() {
            topology.fabric.firmware = Firmware::parse(firmware).expect("the header names a release");
        }
        let fabric = Fabric::start(topology).await.expect("fabric starts");
        fabric.wait_converged(CONVERGE).await.expect("converges");
        let expected = std::fs::read_to_string(&file).unwrap();
        let node = expected
            .lines()
            .find_map(|line| line.strip_prefix("#! node: "))
            .unwrap_or("root")
            .trim();
        let inputs = transcript::inputs(&expected);
        let played = fabric.transcript(node, &inputs).await.expect("transcript plays");
        let expected_body: String = expected
            .lines()
            .filter(|line| !line.starts_with("#!"))
            .map(|line| format!("{line}\n"))
            .collect();
        assert_eq!(
            played,
            expected_body,
            "{} differs on a real fabric",
            file.display()
        );
        fabric.stop().await;
    }
}
