//! The `fabricsim` binary's life cycle as a user meets it: Ctrl-C at any moment of the
//! start-up, `status --wait` started before `up`, a SIGKILL in the middle of a stream of
//! writes, damaged data at start and `node --repair`, the log files.

use std::ops::RangeInclusive;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use fabricsim::rpc::client::{AdminConnection, Operator};
use fabricsim::sim::pki::Pki;

use crate::binary::{Up, fabricsim, text, write_topology};
use crate::disk::scribble;

/// How long `up` may take to stop after Ctrl-C or SIGTERM.
const STOP_DEADLINE: Duration = Duration::from_secs(5);

/// The e2e topology on fixed ports with a `[bootstrap]` of three fctems entries.
fn write_bootstrapped_topology(dir: &Path) {
    let path = write_fixed_port_topology(dir);
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("\n[bootstrap]\nroot = [\n    \"config endpoint-control fctems\",\n");
    for i in 1..=3 {
        text.push_str(&format!(
            "    \"edit ems{i}\", \"set server 127.0.100.{i}\", \"set https-port 844{i}\", \"next\",\n"
        ));
    }
    text.push_str("    \"end\",\n]\n");
    std::fs::write(&path, text).unwrap();
}

fn state(dir: &Path) -> std::path::PathBuf {
    dir.join(".fabricsim/e2e")
}

/// The lock files left in the state directory.
fn lock_files(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(state(dir)) else {
        return Vec::new();
    };
    entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".lock"))
        .collect()
}

fn signal(pid: u32, signal: &str) {
    let sent = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill {signal} {pid}");
}

#[test]
fn ctrl_c_at_any_moment_of_the_start_up_stops_up_cleanly() {
    use std::os::unix::process::ExitStatusExt as _;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_bootstrapped_topology(d);
    // `None`: at once after the spawn; else once `up` printed a line with the text.
    let moments = [
        None,
        Some("fabric e2e:"),
        Some("started root"),
        Some("bootstrap: running"),
        Some("is up"),
    ];
    for moment in moments {
        let mut up = Up::start(d, &["--fresh"]);
        if let Some(line) = moment {
            up.wait_for_line(line);
        }
        signal(up.pid, "-INT");
        let status = up.wait_exit(STOP_DEADLINE, &format!("SIGINT at {moment:?}"));
        // Before its handler is installed the signal ends the process, which has made
        // nothing yet; after, `up` stops and exits 0.
        assert!(
            status.success() || status.signal() == Some(2),
            "SIGINT at {moment:?}: {status}"
        );
        assert_eq!(lock_files(d), Vec::<String>::new(), "SIGINT at {moment:?}");
    }
    // An interrupted bootstrap runs again at the next start; SIGTERM stops as Ctrl-C does.
    let mut up = Up::start(d, &[]);
    up.wait_for_line("is up");
    let shown = fabricsim(
        d,
        &[
            "exec",
            "-c",
            "fabric.toml",
            "branch1",
            "show endpoint-control fctems",
        ],
    );
    assert!(
        String::from_utf8_lossy(&shown.stdout).contains("edit \"ems3\""),
        "{}",
        text(&shown)
    );
    signal(up.pid, "-TERM");
    assert!(up.wait_exit(STOP_DEADLINE, "SIGTERM").success());
    assert_eq!(lock_files(d), Vec::<String>::new());
}

#[test]
fn status_wait_started_before_up_waits_for_the_bootstrap() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_owned();
    write_bootstrapped_topology(&d);
    // Before any `up`, `--wait` waits for a fabric to appear, and says what it waited for.
    let started = Instant::now();
    let alone = fabricsim(&d, &["status", "-c", "fabric.toml", "--wait", "1"]);
    assert_eq!(alone.status.code(), Some(1), "{}", text(&alone));
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{}",
        text(&alone)
    );
    assert!(
        String::from_utf8_lossy(&alone.stderr).contains("no admin token"),
        "{}",
        text(&alone)
    );
    // Started with `up`, it answers once the bootstrap has been applied everywhere.
    let mut up = Up::start(&d, &[]);
    let status = fabricsim(&d, &["status", "-c", "fabric.toml", "--wait", "50", "--json"]);
    assert!(status.status.success(), "{}", text(&status));
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(json["converged"], true, "{json}");
    assert_eq!(json["revision"], 3, "the three bootstrap entries: {json}");
    let recorded = std::fs::read_to_string(state(&d).join("bootstrap.applied")).unwrap();
    assert_eq!(recorded.trim(), "3");
    up.wait_for_line("is up");
    up.terminate();
}

/// Writes `set https-port N` on entry ems1 for each N of `ports`, through one CLI session
/// on the root, one acknowledged revision each; process `pid` gets a SIGKILL as the
/// stream reaches `kill_at`. Returns the last port acknowledged: the stream ends at the
/// first write not acknowledged within 10 s.
async fn write_stream(d: &Path, ports: RangeInclusive<u16>, kill_at: u16, pid: u32) -> u16 {
    let token = std::fs::read_to_string(state(d).join("admin.token")).unwrap();
    let addr = std::fs::read_to_string(state(d).join("root/listen")).unwrap();
    let credentials = Pki::open(&state(d).join("pki"))
        .and_then(|pki| pki.operator_credentials())
        .expect("the operator's certificate");
    let operator = Operator::new(token.trim(), &credentials).expect("operator");
    let mut connection = AdminConnection::connect(addr.trim().parse().unwrap(), &operator)
        .await
        .expect("connects to the root");
    let mut session = connection.session().await.expect("session");
    for line in [
        "config endpoint-control fctems",
        "edit ems1",
        "set server 127.0.100.11",
    ] {
        assert!(!session.run(line).await.unwrap().failed, "{line}");
    }
    let mut acknowledged = ports.start().saturating_sub(1);
    for port in ports {
        if port == kill_at {
            // The kill lands while the next writes are in flight.
            std::thread::spawn(move || signal(pid, "-KILL"));
        }
        let written = async {
            let set = session.run(&format!("set https-port {port}")).await?;
            let next = session.run("next").await?;
            session.run("edit ems1").await?;
            Ok::<bool, fabricsim::rpc::client::ClientError>(!set.failed && !next.failed)
        };
        match tokio::time::timeout(Duration::from_secs(10), written).await {
            Ok(Ok(true)) => acknowledged = port,
            _ => return acknowledged,
        }
    }
    acknowledged
}

/// Waits for the fabric in `d` to converge, then checks that every node holds the write
/// of port `acknowledged` or the one after it (in flight when a node was killed, it may
/// have committed unacknowledged), and that the revision is that port: each write is one
/// revision, in order, so none is missing. Returns the port.
async fn every_node_holds(d: &Path, acknowledged: u16) -> u64 {
    let d = d.to_owned();
    tokio::task::spawn_blocking(move || {
        let status = fabricsim(&d, &["status", "-c", "fabric.toml", "--wait", "30", "--json"]);
        assert!(status.status.success(), "{}", text(&status));
        let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
        let ports: Vec<u64> = ["root", "branch1", "branch2"]
            .iter()
            .map(|node| {
                let shown = fabricsim(
                    &d,
                    &["exec", "-c", "fabric.toml", node, "show endpoint-control fctems"],
                );
                let shown = String::from_utf8_lossy(&shown.stdout).into_owned();
                shown
                    .lines()
                    .find_map(|line| line.trim().strip_prefix("set https-port "))
                    .unwrap_or_else(|| panic!("no https-port on {node}:\n{shown}"))
                    .parse()
                    .unwrap()
            })
            .collect();
        let port = ports[0];
        assert!(ports.iter().all(|p| *p == port), "the nodes disagree: {ports:?}");
        let acknowledged = u64::from(acknowledged);
        assert!(
            (acknowledged..=acknowledged + 1).contains(&port),
            "port {port}, acknowledged {acknowledged}"
        );
        assert_eq!(json["revision"], port, "{json}");
        port
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_write_stream_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_owned();
    write_fixed_port_topology(&d);
    let mut up = Up::start(&d, &[]);
    up.wait_for_line("is up");
    let acknowledged = write_stream(&d, 1..=u16::MAX, 25, up.pid).await;
    assert!(acknowledged >= 24, "only {acknowledged} writes before the kill");
    up.wait_exit(STOP_DEADLINE, "SIGKILL");

    let d2 = d.clone();
    let (status, shown) = tokio::task::spawn_blocking(move || {
        let mut up = Up::start(&d2, &[]);
        up.wait_for_line("is up");
        let status = fabricsim(&d2, &["status", "-c", "fabric.toml", "--wait", "30", "--json"]);
        let shown = fabricsim(
            &d2,
            &[
                "exec",
                "-c",
                "fabric.toml",
                "branch2",
                "show endpoint-control fctems",
            ],
        );
        up.terminate();
        (status, shown)
    })
    .await
    .unwrap();
    assert!(status.status.success(), "{}", text(&status));
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout).into_owned();
    let port: u64 = shown
        .lines()
        .find_map(|line| line.trim().strip_prefix("set https-port "))
        .unwrap_or_else(|| panic!("no https-port in:\n{shown}"))
        .parse()
        .unwrap();
    // Each write is one revision, in order: the revision is the last port written, and no
    // acknowledged one is missing.
    assert!(
        port >= u64::from(acknowledged),
        "port {port}, acknowledged {acknowledged}"
    );
    assert_eq!(json["revision"], port, "{json}");
}

/// `fabricsim node` NAME of the topology in `d`, once it listens.
fn start_node(d: &Path, name: &str) -> Up {
    let mut node = Up::spawn(d, &["node", "-c", "fabric.toml", name]);
    node.wait_for_line("listening on");
    node
}

/// A fabric of `fabricsim node` processes: a voter's process, then the root's, killed
/// with SIGKILL in the middle of a stream of writes and started again; every
/// acknowledged write is then on every node. While the voter is down the root and the
/// other voter keep committing, so every write of that stream is acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_process_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_owned();
    write_fixed_port_topology(&d);
    let mut sim = Up::spawn(&d, &["sim", "-c", "fabric.toml"]);
    sim.wait_for_line("are running");
    let mut root = start_node(&d, "root");
    let mut branch1 = start_node(&d, "branch1");
    let branch2 = start_node(&d, "branch2");

    let acknowledged = write_stream(&d, 1..=40, 15, branch1.pid).await;
    assert_eq!(acknowledged, 40, "writes stopped when a voter died");
    branch1.wait_exit(STOP_DEADLINE, "SIGKILL of branch1");
    let branch1 = start_node(&d, "branch1");
    assert_eq!(every_node_holds(&d, acknowledged).await, 40);

    let acknowledged = write_stream(&d, 41..=u16::MAX, 55, root.pid).await;
    assert!(
        acknowledged >= 54,
        "only up to port {acknowledged} before the kill"
    );
    root.wait_exit(STOP_DEADLINE, "SIGKILL of the root");
    let root = start_node(&d, "root");
    every_node_holds(&d, acknowledged).await;

    for node in [root, branch1, branch2, sim] {
        node.terminate();
    }
}

/// The e2e topology with fixed gRPC ports: a member that comes back empty is found by the
/// root at the address the Raft membership holds. (With port 0 every `up` moves the nodes;
/// the root learns a member's new address through a membership change, which cannot
/// commit while the other voters' addresses are stale.)
fn write_fixed_port_topology(dir: &Path) -> std::path::PathBuf {
    let path = write_topology(dir);
    let mut text = std::fs::read_to_string(&path).unwrap();
    for _ in 0..3 {
        let port = unused_fixed_port();
        text = text.replacen(
            "listen = \"127.0.0.1:0\"\n",
            &format!("listen = \"127.0.0.1:{port}\"\nhttps = \"127.0.0.1:0\"\nssh = \"127.0.0.1:0\"\n"),
            1,
        );
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// A port that is free now, below Linux's ephemeral range (32768 and up), so no port-0
/// listener or outgoing connection of the tests running beside this one takes it before
/// `up` binds it; each call of this process gets another one.
fn unused_fixed_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let offset = (std::process::id() % 600) as u16 * 20;
    (0..2_000)
        .map(|_| 20_000 + (offset + NEXT.fetch_add(1, Ordering::Relaxed)) % 12_000)
        .find(|port| std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .expect("a free port below 32768")
}

#[test]
fn damaged_members_stop_up_at_once_and_node_repair_recovers_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_fixed_port_topology(d);
    let mut up = Up::start(d, &[]);
    up.wait_for_line("is up");
    let lines = crate::ems_entry("ems1", "127.0.100.1", 8443);
    let mut args = vec!["exec", "-c", "fabric.toml", "root"];
    args.extend(lines.iter().map(String::as_str));
    assert!(fabricsim(d, &args).status.success());
    assert!(
        fabricsim(d, &["status", "-c", "fabric.toml", "--wait", "30"])
            .status
            .success()
    );
    up.terminate();
    for node in ["root", "branch1"] {
        let log = std::fs::read_to_string(state(d).join(node).join("fabricsim.log")).unwrap();
        assert!(log.contains("node started"), "{node}'s log:\n{log}");
    }
    let log = std::fs::read_to_string(state(d).join("fabricsim.log")).unwrap();
    assert!(log.contains("starting the fabric"), "{log}");

    std::fs::remove_file(state(d).join("admin.token")).unwrap();
    for node in ["branch1", "branch2"] {
        scribble(&state(d).join(node).join("raft.redb"));
    }
    let refused = fabricsim(d, &["up", "-c", "fabric.toml"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    for node in ["branch1", "branch2"] {
        let path = state(d).join(node).join("raft.redb");
        assert!(stderr.contains(&path.display().to_string()), "{}", text(&refused));
    }
    assert_eq!(lock_files(d), Vec::<String>::new());
    assert!(!state(d).join("admin.token").exists(), "a token was left behind");

    let alone = fabricsim(d, &["node", "-c", "fabric.toml", "branch1"]);
    assert_eq!(alone.status.code(), Some(1), "{}", text(&alone));
    assert!(
        String::from_utf8_lossy(&alone.stderr).contains("fabricsim node --repair branch1"),
        "{}",
        text(&alone)
    );
    let root = fabricsim(d, &["node", "-c", "fabric.toml", "--repair", "root"]);
    assert_eq!(root.status.code(), Some(1), "{}", text(&root));
    assert!(
        String::from_utf8_lossy(&root.stderr).contains("--fresh"),
        "{}",
        text(&root)
    );
    for node in ["branch1", "branch2"] {
        let repaired = fabricsim(d, &["node", "-c", "fabric.toml", "--repair", node]);
        assert!(repaired.status.success(), "{}", text(&repaired));
        assert!(
            String::from_utf8_lossy(&repaired.stdout).contains("raft.redb.damaged-"),
            "{}",
            text(&repaired)
        );
    }
    let mut up = Up::start(d, &[]);
    up.wait_for_line("is up");
    let status = fabricsim(d, &["status", "-c", "fabric.toml", "--wait", "30", "--json"]);
    assert!(status.status.success(), "{}", text(&status));
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    for node in json["nodes"].as_array().unwrap() {
        assert_eq!(node["revision"], 1, "{node}");
    }
    up.terminate();
}
