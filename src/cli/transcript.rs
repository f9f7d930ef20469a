//! Terminal transcripts: read the input lines out of one, and replay them.
//!
//! A transcript is exactly what a terminal shows: every command as `<prompt><command>`
//! followed by its output. Input lines are recognised by the prompt shape
//! `^\S+( \([^)]*\))? # ` (`FGT-root # `, `FGT-root (ems1) # `). Lines starting with `#!`
//! are headers and comments for the reader and the test harness (`#! node: branch1`,
//! `#! firmware: 7.0.12`); they
//! belong at the top of the file, and [`preamble`] returns them so that
//! `preamble(text) + play(inputs(text))` reproduces a correct transcript byte for byte.

use super::backend::Backend;
use super::session::Session;

/// Marks a header or comment line.
const HEADER_MARK: &str = "#!";

/// The commands typed in `text`, in order, without their prompts. The line after a
/// question ending in `(y/n)` is the answer typed to it.
pub fn inputs(text: &str) -> Vec<String> {
    let mut typed = Vec::new();
    let mut after_question = false;
    for line in text.lines().filter(|line| !line.starts_with(HEADER_MARK)) {
        if after_question {
            typed.push(line.to_owned());
        } else if let Some(input) = input_of(line) {
            typed.push(input.to_owned());
        }
        after_question = line.ends_with(QUESTION_MARK);
    }
    typed
}

/// How a question the next line answers ends.
const QUESTION_MARK: &str = "(y/n)";

/// The leading `#!` lines of `text`, each with its line end.
pub fn preamble(text: &str) -> String {
    text.lines()
        .take_while(|line| line.starts_with(HEADER_MARK))
        .map(|line| format!("{line}\n"))
        .collect()
}

/// The values of every `#! <name>: <value>` header in `text`, in order.
pub fn headers<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|line| line.strip_prefix(HEADER_MARK))
        .filter_map(|header| {
            let (key, value) = header.split_once(':')?;
            (key.trim() == name).then_some(value.trim())
        })
        .collect()
}

/// Runs `inputs` in a fresh session on `backend` and renders the terminal: each input after
/// the prompt it was typed at, then its output.
pub async fn play<B: Backend>(backend: &B, inputs: &[String]) -> String {
    let mut session = Session::new();
    let mut screen = String::new();
    for input in inputs {
        screen.push_str(&session.prompt(backend.identity()));
        screen.push_str(input);
        screen.push('\n');
        screen.push_str(&session.execute(backend, input).await.output);
    }
    screen
}

/// The command typed on `line` if the line starts with a prompt.
fn input_of(line: &str) -> Option<&str> {
    let hostname_end = line.find(char::is_whitespace)?;
    if hostname_end == 0 {
        return None;
    }
    let mut rest = &line[hostname_end..];
    if let Some(context) = rest.strip_prefix(" (") {
        let close = context.find(')')?;
        rest = &context[close + 1..];
    }
    rest.strip_prefix(" # ")
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::cli::test_backend::MemoryBackend;

    /// Golden transcripts; `UPDATE_GOLDEN=1` rewrites them from the current behaviour.
    const GOLDEN: &[&str] = &[
        "fctems-basic.txt",
        "trusted-list.txt",
        "fctems-errors.txt",
        "member-refused.txt",
        "help.txt",
        "fctems-verify.txt",
        "system-csf.txt",
        "update-info.txt",
        "fctems-ems-id.txt",
        "fctems-ems-id-7.txt",
        "system-console.txt",
    ];

    fn golden_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("cli")
    }

    /// The node named by the transcript's `#! node:` header (the root when there is none),
    /// running the release of the `#! firmware:` header (the default when there is none),
    /// its EMS presenting the certificate of the `#! ems:` header, a PEM file beside the
    /// transcripts whose first certificate is the leaf.
    fn backend_for(text: &str) -> MemoryBackend {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;

        let node = headers(text, "node").first().copied().unwrap_or("root");
        let mut backend = MemoryBackend::named(node).unwrap_or_else(|| panic!("unknown node {node}"));
        if let Some(firmware) = headers(text, "firmware").first() {
            let firmware = crate::domain::Firmware::parse(firmware).unwrap_or_else(|e| panic!("{e}"));
            backend.replace(crate::config::ConfigDb::for_firmware(firmware));
        }
        if let Some(file) = headers(text, "ems").first() {
            let chain = std::fs::read(golden_dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
            let leaf = CertificateDer::pem_slice_iter(&chain)
                .next()
                .and_then(Result::ok)
                .unwrap_or_else(|| panic!("{file} holds no certificate"));
            backend.offer = Some(crate::connector::CertificateOffer {
                rendered: crate::connector::render_certificate(&leaf).expect("the fixture renders"),
                pem: crate::connector::certificate_pem(&leaf),
                fingerprint: crate::connector::fingerprint(&leaf),
                state: crate::connector::CertificateState::Untrusted,
                chain: vec![leaf.clone()],
                trusted_by_ca: false,
                ems_serial: Some("FCTEMS8822004401".to_owned()),
                capabilities: vec!["fabric-auth".to_owned(), "websocket".to_owned()],
            });
            let mut status = crate::connector::EmsStatus::unknown("ems1", "ems.untrusted.example");
            status.connection = crate::connector::Connection::Connected;
            status.certificate = crate::connector::CertificateState::Authorized;
            status.device = crate::connector::DeviceState::Authorized;
            status.detail = crate::connector::DETAIL_AUTHORIZED.to_owned();
            status.ems_serial = Some("FCTEMS8822004401".to_owned());
            backend.status = Some(status);
        }
        if let Some(account) = headers(text, "cloud-account").first() {
            let contracts = headers(text, "cloud-contract")
                .iter()
                .map(|contract| {
                    let words: Vec<&str> = contract.split_whitespace().collect();
                    crate::connector::forticloud::CloudContract {
                        kind: words[0].to_owned(),
                        expires: words[1].to_owned(),
                        expired: words.get(2) == Some(&"expired"),
                    }
                })
                .collect();
            backend.cloud = Some(crate::connector::forticloud::CloudRecord {
                serial: backend.identity().serial.clone(),
                registered: *account != "none",
                account: (*account).to_owned(),
                contracts,
            });
        }
        backend
    }

    async fn replay(name: &str) {
        let path = golden_dir().join(name);
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        let backend = backend_for(&text);
        let rendered = preamble(&text) + &play(&backend, &inputs(&text)).await;
        if std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1") {
            std::fs::write(&path, rendered).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            return;
        }
        if rendered != text {
            let line = rendered
                .lines()
                .zip(text.lines())
                .position(|(got, want)| got != want)
                .unwrap_or_else(|| rendered.lines().count().min(text.lines().count()));
            panic!(
                "{name} differs from line {}:\n--- expected\n{}\n--- rendered\n{}\n(UPDATE_GOLDEN=1 rewrites the file)",
                line + 1,
                text.lines().skip(line).take(5).collect::<Vec<_>>().join("\n"),
                rendered.lines().skip(line).take(5).collect::<Vec<_>>().join("\n"),
            );
        }
    }

    #[tokio::test]
    async fn fctems_basic() {
        replay("fctems-basic.txt").await;
    }

    #[tokio::test]
    async fn fctems_errors() {
        replay("fctems-errors.txt").await;
    }

    #[tokio::test]
    async fn member_refused() {
        replay("member-refused.txt").await;
    }

    #[tokio::test]
    async fn help() {
        replay("help.txt").await;
    }

    #[tokio::test]
    async fn update_info() {
        replay("update-info.txt").await;
    }

    #[tokio::test]
    async fn fctems_ems_id() {
        replay("fctems-ems-id.txt").await;
    }

    #[tokio::test]
    async fn fctems_ems_id_7() {
        replay("fctems-ems-id-7.txt").await;
    }

    #[tokio::test]
    async fn system_csf() {
        replay("system-csf.txt").await;
    }

    #[tokio::test]
    async fn trusted_list() {
        replay("trusted-list.txt").await;
    }

    #[tokio::test]
    async fn system_console() {
        replay("system-console.txt").await;
    }

    #[tokio::test]
    async fn fctems_verify() {
        replay("fctems-verify.txt").await;
    }

    #[test]
    fn every_golden_file_is_replayed() {
        let mut found: Vec<String> = std::fs::read_dir(golden_dir())
            .expect("tests/cli exists")
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| name.ends_with(".txt"))
            .collect();
        found.sort();
        let mut listed: Vec<String> = GOLDEN.iter().map(|name| (*name).to_owned()).collect();
        listed.sort();
        assert_eq!(found, listed);
    }

    #[test]
    fn inputs_are_recognised_by_the_prompt() {
        let text = "#! node: root\n\
                    FGT-root # config endpoint-control fctems\n\
                    FGT-root (fctems) # edit \"my ems\"\n\
                    new entry 'my ems' added\n\
                    FGT-root (my ems) # set server 10.0.0.1\n\
                    config endpoint-control fctems\n\
                    \x20   edit \"x\"\n\
                    name                : x\n\
                    FGT-root (ems1) #\n";
        assert_eq!(
            inputs(text),
            [
                "config endpoint-control fctems",
                "edit \"my ems\"",
                "set server 10.0.0.1"
            ]
        );
        assert_eq!(preamble(text), "#! node: root\n");
        assert_eq!(headers(text, "node"), ["root"]);
        assert!(headers(text, "other").is_empty());
    }

    #[tokio::test]
    async fn play_renders_prompts_and_output() {
        let backend = MemoryBackend::root();
        let inputs = ["config endpoint-control fctems".to_owned(), "frob".to_owned()];
        assert_eq!(
            play(&backend, &inputs).await,
            "FGT-root # config endpoint-control fctems\n\
             FGT-root (fctems) # frob\n\
             command parse error before 'frob'\n\
             Command fail. Return code -61\n"
        );
    }
}
