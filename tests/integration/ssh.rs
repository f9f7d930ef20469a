//! The FortiOS CLI over SSH, driven with russh's client as netmiko drives paramiko: DH
//! group exchange only, password and keyboard-interactive logins, the unprompted prompt,
//! replicated edits, `| grep`, `--More--` paging and `config system console`, a `(y/n)`
//! question, `exit`, and a host key that survives a restart.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fabricsim::harness::Fabric;
use fabricsim::topology::Topology;
use russh::client::{self, KeyboardInteractiveAuthResponse};
use russh::keys::{HashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, Preferred};

use crate::CONVERGE;

const PASSWORD: &str = "fabricsim-ssh";
/// How long one expected piece of output may take.
const READ: Duration = Duration::from_secs(20);
/// The FQDN of the test EMS.
const EMS_HOST: &str = "ems.ssh.example";

/// Two FortiGates and one EMS with a self-signed certificate (so `execute fctems verify`
/// asks its question), everything on 127.0.0.1.
fn topology() -> Topology {
    let text = format!(
        "[fabric]\nname = \"ssh\"\n\n[raft]\nheartbeat_ms = 100\nelection_timeout_min_ms = 400\n\
         election_timeout_max_ms = 800\n\n[admin]\npassword = \"{PASSWORD}\"\n\n[dns]\n\
         \"{EMS_HOST}\" = \"127.0.0.1\"\n\n[[ems]]\nname = \"ems1\"\nserial = \"FCTEMS8822005678\"\n\
         hostname = \"{EMS_HOST}\"\nlisten = \"127.0.0.1:0\"\ncertificate = \"self-signed\"\n\n\
         [[node]]\nname = \"root\"\nserial = \"FGVM01TM22071001\"\nrole = \"root\"\nlisten = \"127.0.0.1:0\"\n\n\
         [[node]]\nname = \"branch1\"\nserial = \"FGVM01TM22071002\"\nrole = \"member\"\nlisten = \"127.0.0.1:0\"\n"
    );
    Topology::parse(&text, Path::new("<test>")).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// Accepts any host key and remembers its SHA-256 fingerprint.
struct Pinning {
    seen: Arc<Mutex<Option<String>>>,
}

impl client::Handler for Pinning {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        if let PublicKeyOrCertificate::PublicKey { key, .. } = key {
            *self.seen.lock().unwrap() = Some(key.fingerprint(HashAlg::Sha256).to_string());
        }
        Ok(true)
    }
}

/// A logged-in shell channel and what it printed that no read took yet.
struct Shell {
    _handle: client::Handle<Pinning>,
    channel: russh::Channel<client::Msg>,
    pending: String,
}

/// Connects offering only DH group exchange SHA-256, as netmiko leaves paramiko; returns
/// the handle and the host key's fingerprint.
async fn connect(addr: SocketAddr) -> (client::Handle<Pinning>, String) {
    let config = client::Config {
        preferred: Preferred {
            kex: Cow::Borrowed(&[russh::kex::DH_GEX_SHA256]),
            ..Preferred::default()
        },
        ..Default::default()
    };
    let seen = Arc::new(Mutex::new(None));
    let handler = Pinning { seen: seen.clone() };
    let handle = tokio::time::timeout(READ, client::connect(Arc::new(config), addr, handler))
        .await
        .expect("SSH handshake in time")
        .expect("SSH handshake with DH GEX SHA-256");
    let fingerprint = seen.lock().unwrap().clone().expect("a host key was offered");
    (handle, fingerprint)
}

/// Logs in with the password, opens a pty `height` rows high and a shell.
async fn login(addr: SocketAddr, height: u32) -> Shell {
    let (mut handle, _) = connect(addr).await;
    let auth = handle.authenticate_password("admin", PASSWORD).await.unwrap();
    assert!(auth.success(), "the right password logs in");
    let channel = handle.channel_open_session().await.unwrap();
    channel
        .request_pty(true, "vt100", 511, height, 0, 0, &[])
        .await
        .unwrap();
    channel.request_shell(true).await.unwrap();
    Shell {
        _handle: handle,
        channel,
        pending: String::new(),
    }
}

impl Shell {
    /// Everything printed up to and including `needle`.
    async fn read_until(&mut self, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + READ;
        while !self.pending.contains(needle) {
            let message = tokio::time::timeout_at(deadline, self.channel.wait())
                .await
                .unwrap_or_else(|_| panic!("{needle:?} not printed in time; got {:?}", self.pending));
            match message {
                Some(ChannelMsg::Data { data }) => self.pending.push_str(&String::from_utf8_lossy(&data)),
                Some(_) => {}
                None => panic!("channel closed before {needle:?}; got {:?}", self.pending),
            }
        }
        let end = self.pending.find(needle).unwrap() + needle.len();
        self.pending.drain(..end).collect()
    }

    async fn send(&mut self, bytes: &str) {
        self.channel.data(bytes.as_bytes()).await.unwrap();
    }

    /// Types `line` and Enter (`\n`, as netmiko), returns the output up to the next `prompt`.
    async fn command(&mut self, line: &str, prompt: &str) -> String {
        self.send(&format!("{line}\n")).await;
        let echoed = self.read_until(&format!("{line}\r\n")).await;
        assert!(echoed.ends_with(&format!("{line}\r\n")), "{echoed:?}");
        let out = self.read_until(prompt).await;
        out[..out.len() - prompt.len()].to_owned()
    }

    /// Waits for the channel to close; returns the exit status it sent.
    async fn closed(mut self) -> Option<u32> {
        let mut status = None;
        loop {
            let message = tokio::time::timeout(READ, self.channel.wait())
                .await
                .expect("the channel closes in time");
            match message {
                Some(ChannelMsg::ExitStatus { exit_status }) => status = Some(exit_status),
                Some(ChannelMsg::Close) | None => return status,
                Some(_) => {}
            }
        }
    }
}

const TOP: &str = "FGT-root # ";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_over_ssh_logs_in_edits_pages_and_logs_out() {
    let fabric = Fabric::start(topology()).await.expect("fabric starts");
    let addr = fabric.node_addrs("root").unwrap().ssh;

    // A wrong password is refused, by either method.
    let (mut handle, _) = connect(addr).await;
    let auth = handle.authenticate_password("admin", "wrong").await.unwrap();
    assert!(!auth.success(), "a wrong password logs in");
    let asked = handle
        .authenticate_keyboard_interactive_start("admin", None)
        .await
        .unwrap();
    match asked {
        KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } => {
            assert_eq!(prompts.len(), 1);
            assert_eq!(prompts[0].prompt, "Password: ");
            assert!(!prompts[0].echo);
        }
        other => panic!("keyboard-interactive asked nothing: {other:?}"),
    }
    let answered = handle
        .authenticate_keyboard_interactive_respond(vec![PASSWORD.to_owned()])
        .await
        .unwrap();
    assert!(
        matches!(answered, KeyboardInteractiveAuthResponse::Success),
        "{answered:?}"
    );
    drop(handle);

    // The prompt comes unasked; an edit over SSH reaches every member.
    let mut shell = login(addr, 6).await;
    assert_eq!(shell.read_until(TOP).await, TOP);
    for (line, prompt) in [
        ("config endpoint-control fctems", "FGT-root (fctems) # "),
        ("edit ems1", "FGT-root (ems1) # "),
        ("set server 127.0.100.1", "FGT-root (ems1) # "),
        ("end", TOP),
    ] {
        let out = shell.command(line, prompt).await;
        assert!(!out.contains("Command fail"), "{line}: {out}");
    }
    fabric.wait_converged(CONVERGE).await.unwrap();
    for node in ["root", "branch1"] {
        let shown = fabric
            .exec(node, &["show endpoint-control fctems"])
            .await
            .unwrap();
        assert!(
            shown.output.contains("set server \"127.0.100.1\""),
            "{node}: {}",
            shown.output
        );
    }

    // `| grep` keeps the matching lines only; CR LF line ends.
    let version = shell.command("get system status | grep Version", TOP).await;
    assert!(version.starts_with("Version: FortiGate-VM64 v7."), "{version:?}");
    // A plain substring, as FortiOS's grep: "Release Version Information" matches too.
    assert_eq!(
        version.split_terminator("\r\n").collect::<Vec<_>>()[1..],
        ["Release Version Information: GA"],
        "{version:?}"
    );
    let vdom = shell.command("get system status | grep Virtual", TOP).await;
    assert_eq!(vdom, "Virtual domain configuration: disable\r\n");

    // 14 lines on a 6-row pty: a page of 5, then --More--; Enter adds a line, q stops.
    shell.send("get system status\r").await;
    let page = shell.read_until("--More-- ").await;
    assert!(
        page.contains("Version: ") && !page.contains("Operation Mode"),
        "{page:?}"
    );
    shell.send("\r").await;
    let line = shell.read_until("--More-- ").await;
    assert!(line.contains("Operation Mode: NAT\r\n"), "{line:?}");
    shell.send("q").await;
    shell.read_until(TOP).await;
    let console = shell.command("get system console", TOP).await;
    assert_eq!(console, "output              : more\r\n");

    // With `set output standard` the same output comes whole.
    for (line, prompt) in [
        ("config system console", "FGT-root (console) # "),
        ("set output standard", "FGT-root (console) # "),
        ("end", TOP),
    ] {
        shell.command(line, prompt).await;
    }
    let whole = shell.command("get system status", TOP).await;
    assert!(!whole.contains("--More--"), "{whole:?}");
    assert!(whole.contains("System time: "), "{whole:?}");

    // Backspace edits the line; `exit` at the top ends the login with status 0.
    shell.send("get system consolx\x7fe\r\n").await;
    let edited = shell.read_until(TOP).await;
    assert!(
        edited.contains("output              : standard\r\n"),
        "{edited:?}"
    );
    shell.send("exit\n").await;
    assert_eq!(shell.closed().await, Some(0));
    fabric.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_is_answered_over_ssh_and_the_host_key_survives_a_restart() {
    let mut fabric = Fabric::start(topology()).await.expect("fabric starts");
    let addr = fabric.node_addrs("root").unwrap().ssh;
    let port = fabric.lab().ems("ems1").unwrap().addr().port();
    let mut shell = login(addr, 1000).await;
    shell.read_until(TOP).await;
    for (line, prompt) in [
        ("config endpoint-control fctems", "FGT-root (fctems) # "),
        ("edit ems1", "FGT-root (ems1) # "),
        (format!("set server {EMS_HOST}").as_str(), "FGT-root (ems1) # "),
        (format!("set https-port {port}").as_str(), "FGT-root (ems1) # "),
        ("end", TOP),
    ] {
        shell.command(line, prompt).await;
    }
    shell.send("execute fctems verify ems1\n").await;
    let question = shell.read_until("(y/n)").await;
    assert!(question.contains("Root CA:"), "{question:?}");
    let declined = shell.command("n", TOP).await;
    assert!(!declined.contains("Command fail"), "{declined:?}");
    // Ctrl-D on an empty line closes the shell too.
    shell.send("\x04").await;
    assert_eq!(shell.closed().await, Some(0));

    let (_, before) = connect(addr).await;
    fabric.kill("root").await.unwrap();
    fabric.restart("root").await.unwrap();
    let (_, after) = connect(addr).await;
    assert_eq!(before, after, "the host key changed across a restart");
    let mut shell = login(addr, 1000).await;
    assert_eq!(shell.read_until(TOP).await, TOP);

    // A command on the ssh line (exec) is refused, not left unanswered.
    let (mut handle, _) = connect(addr).await;
    assert!(
        handle
            .authenticate_password("admin", PASSWORD)
            .await
            .unwrap()
            .success()
    );
    let mut exec = handle.channel_open_session().await.unwrap();
    exec.exec(true, "get system status").await.unwrap();
    let answer = tokio::time::timeout(READ, async {
        loop {
            match exec.wait().await {
                Some(ChannelMsg::Failure) => return true,
                Some(ChannelMsg::Success) | None => return false,
                Some(_) => {}
            }
        }
    })
    .await
    .expect("exec answered in time");
    assert!(answer, "exec was not refused");
    fabric.stop().await;
}
