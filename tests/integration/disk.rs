//! Damaged data files: reported at start with the file's path and what is wrong, every
//! damaged node at once, never reset; a damaged member is repaired from the root.

use std::path::Path;

use fabricsim::harness::{Fabric, generated_topology};
use fabricsim::launcher::{LaunchError, Plan, Ports, RunningFabric};

use crate::{CONVERGE, ems_entry};

/// Overwrites everything after the first page of `path` (redb's header) with a pattern
/// no redb page holds, so the pages the last commit uses are hit: garbage on free pages
/// alone would be harmless, and rightly go unnoticed.
pub(crate) fn scribble(path: &Path) {
    use std::io::{Seek as _, SeekFrom, Write as _};
    const HEADER: u64 = 4096;
    let size = std::fs::metadata(path).expect("the file exists").len();
    assert!(size > HEADER, "{} holds no page after its header", path.display());
    let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.seek(SeekFrom::Start(HEADER)).unwrap();
    let garbage: Vec<u8> = (0..size - HEADER).map(|i| (i * 131 + 7) as u8).collect();
    file.write_all(&garbage).unwrap();
    file.sync_all().unwrap();
}

/// Flips a bit in the first batch of the oldest segment of the Raft log in `data_dir`:
/// damage, not a write a crash cut short, since a segment's first batch is on disk before
/// the segment is used.
fn flip_first_record(data_dir: &Path) {
    let mut segments: Vec<_> = std::fs::read_dir(data_dir.join("raft-log"))
        .unwrap()
        .map(|item| item.unwrap().path())
        .collect();
    segments.sort();
    let mut bytes = std::fs::read(&segments[0]).unwrap();
    // After the segment's 8-byte magic and the record's length and checksum.
    bytes[17] ^= 0x01;
    std::fs::write(&segments[0], bytes).unwrap();
}

/// Cuts `path` to half its length.
fn truncate(path: &Path) {
    let size = std::fs::metadata(path).expect("the file exists").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(size / 2)
        .unwrap();
}

/// A converged three-node fabric with three fctems entries.
async fn configured_fabric(name: &str) -> Fabric {
    let fabric = Fabric::start(generated_topology(name, 3))
        .await
        .expect("fabric starts");
    fabric.wait_converged(CONVERGE).await.expect("converges");
    for i in 0..3u16 {
        let lines = ems_entry(&format!("ems{i}"), "127.0.100.1", 8443 + i);
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        assert!(!fabric.exec("root", &lines).await.unwrap().failed);
    }
    fabric.wait_converged(CONVERGE).await.expect("converges");
    fabric
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_member_is_reported_then_repaired_from_the_root() {
    let mut fabric = configured_fabric("garbage").await;
    let before = fabric.wait_converged(CONVERGE).await.unwrap();
    fabric.kill("branch1").await.expect("kill");
    let db = fabric.data_dir("branch1").join("raft.redb");
    scribble(&db);
    let error = fabric
        .restart("branch1")
        .await
        .expect_err("a damaged node does not start");
    let text = error.to_string();
    assert!(text.contains(&db.display().to_string()), "{text}");
    assert!(text.contains("damaged"), "{text}");
    // The file is left as it is, and asking again gives the same answer.
    assert!(db.exists());
    let again = fabric
        .restart("branch1")
        .await
        .expect_err("still damaged")
        .to_string();
    assert!(again.contains(&db.display().to_string()), "{again}");

    let refused = fabric.repair("root").await.expect_err("the root is not repaired");
    assert!(refused.to_string().contains("--fresh"), "{refused}");
    let moved = fabric.repair("branch1").await.expect("branch1 is repaired");
    assert_eq!(moved.len(), 2, "the database and the log: {moved:?}");
    assert!(
        moved[0].display().to_string().contains("raft.redb.damaged-"),
        "{moved:?}"
    );
    assert!(
        moved[1].display().to_string().contains("raft-log.damaged-"),
        "{moved:?}"
    );
    assert!(moved.iter().all(|aside| aside.exists()));
    let after = fabric.wait_converged(CONVERGE).await.expect("branch1 catches up");
    assert_eq!(after.revision, before.revision);
    let hashes: Vec<Option<&str>> = after.nodes.iter().map(|n| n.config_hash.as_deref()).collect();
    assert!(
        hashes[0].is_some() && hashes.iter().all(|h| *h == hashes[0]),
        "{hashes:?}"
    );
    fabric.stop().await;
}

/// Every damaged node is reported by one start, each with its file, and nothing starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_damaged_node_is_reported_before_anything_starts() {
    let topology = generated_topology("several", 4);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let plan = Plan::under(data, "token", Ports::Ephemeral);
    let fabric = RunningFabric::start(topology.clone(), plan.clone())
        .await
        .expect("starts");
    let mut session = fabric.connect("root").await.unwrap().session().await.unwrap();
    for line in ems_entry("ems1", "127.0.100.1", 8443) {
        assert!(!session.run(&line).await.unwrap().failed, "{line}");
    }
    drop(session);
    fabric.stop().await;

    scribble(&data.join("branch1/raft.redb"));
    truncate(&data.join("branch2/raft.redb"));
    std::fs::write(data.join("root/local.json"), "{\"tables\": [1, 2").unwrap();
    flip_first_record(&data.join("branch3"));
    let error = match RunningFabric::start(topology, plan).await {
        Ok(_) => panic!("a fabric with damaged nodes started"),
        Err(error) => error,
    };
    assert!(
        matches!(error, LaunchError::Damaged(ref nodes) if nodes.len() == 4),
        "{error}"
    );
    let text = error.to_string();
    for path in [
        "branch1/raft.redb",
        "branch2/raft.redb",
        "root/local.json",
        "branch3/raft-log",
    ] {
        let path = data.join(path).display().to_string();
        assert!(text.contains(&path), "{path} missing from:\n{text}");
    }
    assert!(text.contains("fabricsim node --repair branch1"), "{text}");
    let wal_damage = "0000000000000001.wal is damaged: the batch at offset 8 does not match its checksum";
    assert!(text.contains(wal_damage), "{text}");
    assert!(text.contains("--fresh"), "{text}");
    println!("{text}");
}
