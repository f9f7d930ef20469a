//! The `fabricsim` binary, run the way a user runs it: `up` as a child process, then
//! `status`, `exec` and `check` against it from the same directory.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_fabricsim");
pub(crate) const READY: Duration = Duration::from_secs(60);

/// A three-node topology on ephemeral ports, written into `dir`.
pub(crate) fn write_topology(dir: &Path) -> PathBuf {
    let path = dir.join("fabric.toml");
    let mut text = String::from(
        "[fabric]\nname = \"e2e\"\n\n[raft]\nheartbeat_ms = 100\nelection_timeout_min_ms = 400\nelection_timeout_max_ms = 800\n",
    );
    for (i, name) in ["root", "branch1", "branch2"].iter().enumerate() {
        let role = if i == 0 { "root" } else { "member" };
        text.push_str(&format!(
            "\n[[node]]\nname = \"{name}\"\nserial = \"FGVM01TM2200000{}\"\nrole = \"{role}\"\nlisten = \"127.0.0.1:0\"\n",
            i + 1
        ));
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `fabricsim ARGS` in `dir` to completion. A command that has not finished within
/// [`READY`] is killed and fails the test, so a stuck command shows as a failure naming
/// it rather than as a suite that never ends.
pub(crate) fn fabricsim(dir: &Path, args: &[&str]) -> Output {
    let child = Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("fabricsim runs");
    let pid = child.id();
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || done_tx.send(child.wait_with_output()));
    match done_rx.recv_timeout(READY) {
        Ok(output) => output.expect("fabricsim's output can be read"),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            panic!("`fabricsim {}` did not finish within {READY:?}", args.join(" "));
        }
    }
}

pub(crate) fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `fabricsim up` running in the background, its output read line by line. A thread
/// owns the child and reports its exit, so waiting for it is waiting on a channel.
pub(crate) struct Up {
    pub(crate) pid: u32,
    exit: mpsc::Receiver<ExitStatus>,
    exited: Option<ExitStatus>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Up {
    pub(crate) fn start(dir: &Path, extra: &[&str]) -> Up {
        let mut args = vec!["up", "-c", "fabric.toml"];
        args.extend_from_slice(extra);
        Up::spawn(dir, &args)
    }

    /// Any long-running `fabricsim ARGS` (`up`, `sim`, `node`) in `dir`.
    pub(crate) fn spawn(dir: &Path, args: &[&str]) -> Up {
        let mut child = Command::new(BIN)
            .current_dir(dir)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("fabricsim starts");
        let stdout = child.stdout.take().unwrap();
        let (line_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line_tx.send(line).is_err() {
                    return;
                }
            }
        });
        let pid = child.id();
        let (exit_tx, exit) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = exit_tx.send(child.wait().expect("the child can be waited for"));
        });
        Up {
            pid,
            exit,
            exited: None,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for an output line containing `needle`.
    pub(crate) fn wait_for_line(&mut self, needle: &str) {
        let deadline = std::time::Instant::now() + READY;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(needle);
                    self.seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(_) => panic!(
                    "no line with {needle:?} within {READY:?}; saw:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Waits for the process to exit, failing the test (and killing it) past `deadline`.
    pub(crate) fn wait_exit(&mut self, deadline: Duration, what: &str) -> ExitStatus {
        if let Some(status) = self.exited {
            return status;
        }
        match self.exit.recv_timeout(deadline) {
            Ok(status) => *self.exited.insert(status),
            Err(_) => {
                self.send("-KILL");
                panic!("{what}: the process did not exit within {deadline:?}");
            }
        }
    }

    /// Whether the process still runs (its exit, once reported, is kept).
    fn running(&mut self) -> bool {
        if self.exited.is_none() {
            self.exited = self.exit.try_recv().ok();
        }
        self.exited.is_none()
    }

    /// Sends `signal` (`-KILL`, `-TERM`, ...) to the process while it runs.
    fn send(&mut self, signal: &str) {
        if self.running() {
            let _ = Command::new("kill")
                .args([signal, &self.pid.to_string()])
                .status();
        }
    }

    /// Kills the process (SIGKILL) and waits for it to end.
    pub(crate) fn kill(mut self) {
        self.send("-KILL");
        self.wait_exit(READY, "a killed process");
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub(crate) fn terminate(mut self) {
        assert!(self.running(), "up exited before SIGTERM");
        self.send("-TERM");
        self.wait_for_line("stopped");
        let status = self.wait_exit(READY, "up after SIGTERM");
        assert!(status.success(), "up exited with {status}");
    }
}

/// A test that fails leaves no `up` behind.
impl Drop for Up {
    fn drop(&mut self) {
        if self.running() {
            self.send("-KILL");
            let _ = self.exit.recv_timeout(READY);
        }
    }
}

#[test]
fn up_status_exec_restart_and_fresh() {
    let dir = tempfile::tempdir().unwrap();
    write_topology(dir.path());
    let d = dir.path();

    let mut up = Up::start(d, &[]);
    up.wait_for_line("is up");
    let status = fabricsim(d, &["status", "-c", "fabric.toml", "--wait", "30"]);
    assert!(status.status.success(), "{}", text(&status));
    assert!(String::from_utf8_lossy(&status.stdout).contains("converged"));

    let config = fabricsim(
        d,
        &[
            "exec",
            "-c",
            "fabric.toml",
            "root",
            "config endpoint-control fctems",
            "edit ems1",
            "set server ems.lab.example",
            "set https-port 8443",
            "end",
        ],
    );
    assert!(config.status.success(), "{}", text(&config));
    let wait = fabricsim(d, &["status", "-c", "fabric.toml", "--wait", "30", "--json"]);
    assert!(wait.status.success(), "{}", text(&wait));
    let json: serde_json::Value = serde_json::from_slice(&wait.stdout).expect("status --json is JSON");
    assert_eq!(json["revision"], 1);
    assert_eq!(json["converged"], true);
    let nodes = json["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    for node in nodes {
        assert_eq!(node["revision"], 1, "{node}");
        assert_eq!(node["config_hash"], nodes[0]["config_hash"], "{node}");
        assert!(
            node["raft"]["term"].is_u64() && node["raft"]["applied"].is_u64(),
            "{node}"
        );
        // Each node checked the entry itself; this topology has no [dns] name for it.
        let ems = node["ems"].as_array().unwrap();
        assert_eq!(ems.len(), 1, "{node}");
        assert_eq!(ems[0]["name"], "ems1");
        assert_eq!(ems[0]["connection"], "failed");
        assert!(
            ems[0]["detail"]
                .as_str()
                .unwrap()
                .contains("cannot resolve ems.lab.example"),
            "{node}"
        );
    }
    let root_show = fabricsim(
        d,
        &[
            "exec",
            "-c",
            "fabric.toml",
            "root",
            "show endpoint-control fctems",
        ],
    );
    let member_show = fabricsim(
        d,
        &[
            "exec",
            "-c",
            "fabric.toml",
            "branch2",
            "show endpoint-control fctems",
        ],
    );
    assert!(String::from_utf8_lossy(&member_show.stdout).contains("set server \"ems.lab.example\""));
    assert_eq!(root_show.stdout, member_show.stdout);

    // A refused command exits 1 and prints FortiOS's words.
    let refused = fabricsim(
        d,
        &[
            "exec",
            "-c",
            "fabric.toml",
            "branch1",
            "config endpoint-control fctems",
            "delete ems1",
            "end",
        ],
    );
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(String::from_utf8_lossy(&refused.stdout).contains("Modification not allowed"));

    // A second `up` on the same state directory is refused while the first runs.
    let second = fabricsim(d, &["up", "-c", "fabric.toml"]);
    assert!(!second.status.success());
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("already running"),
        "{}",
        text(&second)
    );

    up.terminate();

    // Started again, the fabric still has the entry.
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
    assert_eq!(shown.stdout, root_show.stdout, "{}", text(&shown));
    up.terminate();

    // --fresh starts from nothing.
    let mut up = Up::start(d, &["--fresh"]);
    up.wait_for_line("is up");
    let shown = fabricsim(
        d,
        &[
            "exec",
            "-c",
            "fabric.toml",
            "root",
            "show endpoint-control fctems",
        ],
    );
    assert!(
        !String::from_utf8_lossy(&shown.stdout).contains("ems1"),
        "{}",
        text(&shown)
    );
    up.terminate();
}

#[test]
fn check_explains_every_problem_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[fabric]\nname = \"bad\"\n\n[[node]]\nname = \"root\"\nserial = \"FGVM01TM22000001\"\nrole = \"root\"\n\
         listen = \"127.0.0.11:8013\"\n\n[[node]]\nname = \"branch1\"\nserial = \"FGVM01TM22000001\"\n\
         role = \"root\"\nlisen = \"127.0.0.12:8013\"\n",
    )
    .unwrap();
    let out = fabricsim(dir.path(), &["check", "-c", "bad.toml"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "bad.toml:12:",
        "bad.toml:13:",
        "bad.toml:14:1: unknown key \"lisen\"",
        "did you mean \"listen\"?",
    ] {
        assert!(stdout.contains(expected), "{expected:?} missing from:\n{stdout}");
    }

    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster-configs");
    for file in [
        "default.toml",
        "ten-nodes.toml",
        "ems-untrusted.toml",
        "ems-unauthorized.toml",
        "ems-cloud.toml",
        "pending-member.toml",
    ] {
        let out = fabricsim(&good, &["check", "-c", file]);
        assert!(out.status.success(), "{file}: {}", text(&out));
    }
}

#[test]
fn sim_runs_the_simulators_for_lone_nodes_and_ems_says_when_none_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_topology(d);
    let mut topology = std::fs::read_to_string(d.join("fabric.toml")).unwrap();
    topology.push_str(
        "\n[[ems]]\nname = \"ems1\"\nserial = \"FCTEMS8822001234\"\nhostname = \"ems.lab.example\"\n\
         listen = \"127.0.0.1:0\"\n",
    );
    std::fs::write(d.join("fabric.toml"), topology).unwrap();

    let none = fabricsim(d, &["ems", "-c", "fabric.toml", "ems1", "list-devices"]);
    assert_eq!(none.status.code(), Some(1), "{}", text(&none));
    assert!(
        String::from_utf8_lossy(&none.stderr).contains(
            "no simulators are running for fabric e2e: start them with `fabricsim sim -c fabric.toml`"
        ),
        "{}",
        text(&none)
    );

    let mut sim = Up::spawn(d, &["sim", "-c", "fabric.toml"]);
    sim.wait_for_line("are running");
    let unknown = fabricsim(
        d,
        &[
            "ems",
            "-c",
            "fabric.toml",
            "ems1",
            "authorize",
            "FGVM01TM99999999",
        ],
    );
    assert_eq!(unknown.status.code(), Some(1), "{}", text(&unknown));
    assert!(
        String::from_utf8_lossy(&unknown.stderr)
            .contains("authorized serial \"FGVM01TM99999999\" names no node in fabric.toml"),
        "{}",
        text(&unknown)
    );
    let known = fabricsim(
        d,
        &[
            "ems",
            "-c",
            "fabric.toml",
            "ems1",
            "authorize",
            "FGVM01TM22000002",
        ],
    );
    assert!(known.status.success(), "{}", text(&known));
    assert_eq!(
        String::from_utf8_lossy(&known.stdout),
        "ems1: FGVM01TM22000002 authorized\n"
    );

    let mut node = Up::spawn(d, &["node", "-c", "fabric.toml", "root"]);
    node.wait_for_line("this process runs no simulators (EMS servers, FortiCloud); start them with `fabricsim sim -c fabric.toml`");
    // Only the line matters here; a signal sent this early may come before the node
    // installs its stop handler.
    node.kill();
    sim.terminate();
    let after = fabricsim(d, &["ems", "-c", "fabric.toml", "ems1", "list-devices"]);
    assert_eq!(after.status.code(), Some(1), "{}", text(&after));
}
