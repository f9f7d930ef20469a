//! A headless Chromium driven over W3C WebDriver (chromedriver), for the GUI tests: open a
//! page, find elements by CSS selector, click, double-click, type, read text, wait for a
//! condition with a deadline, and keep a screenshot of every failure.
//!
//! Chromium and chromedriver are found through `FABRICSIM_CHROMIUM` and
//! `FABRICSIM_CHROMEDRIVER`, else on `PATH` (`chromium`, `chromium-browser`,
//! `google-chrome`; `chromedriver`). Without them [`Browser::launch`] answers `None` and
//! the tests say that they were skipped. `.ci/run` installs both first, so CI runs them.

use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

/// How long chromedriver may take to be ready, on a machine busy with other tests.
const DRIVER_START: Duration = Duration::from_secs(60);
/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(100);
/// How long one WebDriver command may take (a page load included).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// The WebDriver element reference key (W3C).
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// Where failing steps leave their screenshots.
const SCREENSHOT_DIR: &str = "target/gui-screenshots";

/// One browser session of a chromedriver this test started.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    test: String,
    _profile: tempfile::TempDir,
}

/// An element of the page.
#[derive(Clone)]
pub struct Element(String);

/// The program `variable` names, else the first of `names` on `PATH`.
fn program(variable: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(variable) {
        return Some(PathBuf::from(path)).filter(|path| path.is_file());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

impl Browser {
    /// Starts chromedriver and a headless Chromium for the test named `test`; `None`
    /// (after saying so on standard error) when either program is missing.
    pub async fn launch(test: &str) -> Option<Browser> {
        let chromium = program(
            "FABRICSIM_CHROMIUM",
            &["chromium", "chromium-browser", "google-chrome"],
        );
        let driver = program("FABRICSIM_CHROMEDRIVER", &["chromedriver"]);
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            // Written to the real standard error, past the test harness's capture, so that
            // a run that skips says so.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: no Chromium and chromedriver found (set FABRICSIM_CHROMIUM and \
                 FABRICSIM_CHROMEDRIVER, or put chromium and chromedriver on PATH; .ci/run installs them)"
            );
            return None;
        };
        let (driver, port) = start_driver(&driver).await;
        let profile = tempfile::tempdir().expect("a temporary Chromium profile");
        let mut browser = Browser {
            driver,
            port,
            session: String::new(),
            test: test.to_owned(),
            _profile: profile,
        };
        let capabilities = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "acceptInsecureCerts": true,
                "goog:chromeOptions": {
                    "binary": chromium,
                    "args": [
                        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        "--disable-quic", "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
                        format!("--user-data-dir={}", browser._profile.path().display()),
                    ],
                },
            }},
        });
        let reply = browser
            .command(Method::POST, "/session", capabilities)
            .await
            .unwrap_or_else(|e| panic!("{test}: chromedriver did not start Chromium: {e}"));
        browser.session = reply["sessionId"]
            .as_str()
            .expect("a new session has an id")
            .to_owned();
        Some(browser)
    }

    /// One WebDriver command on this chromedriver.
    async fn command(&self, method: Method, path: &str, body: Value) -> Result<Value, String> {
        webdriver(self.port, method, path, body).await
    }

    async fn session_command(&self, method: Method, path: &str, body: Value) -> Result<Value, String> {
        self.command(method, &format!("/session/{}{path}", self.session), body)
            .await
    }

    /// Opens `url`.
    pub async fn open(&self, url: &str) -> Result<(), String> {
        self.session_command(Method::POST, "/url", json!({ "url": url }))
            .await
            .map(drop)
    }

    /// The first element `selector` matches now, if any.
    pub async fn find(&self, selector: &str) -> Result<Option<Element>, String> {
        let body = json!({ "using": "css selector", "value": selector });
        match self.session_command(Method::POST, "/element", body).await {
            Ok(value) => Ok(value[ELEMENT_KEY].as_str().map(|id| Element(id.to_owned()))),
            Err(error) if error.contains("no such element") => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// The element `selector` matches, once it is there and shown, within `timeout`.
    pub async fn element(&self, selector: &str, timeout: Duration) -> Result<Element, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(element) = self.find(selector).await?
                && self.displayed(&element).await.unwrap_or(false)
            {
                return Ok(element);
            }
            if Instant::now() >= deadline {
                return Err(format!("no visible element {selector} within {timeout:?}"));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn displayed(&self, element: &Element) -> Result<bool, String> {
        let path = format!("/element/{}/displayed", element.0);
        Ok(self.session_command(Method::GET, &path, Value::Null).await? == json!(true))
    }

    /// Clicks the element `selector` matches.
    pub async fn click(&self, selector: &str, timeout: Duration) -> Result<(), String> {
        let element = self.element(selector, timeout).await?;
        let path = format!("/element/{}/click", element.0);
        self.session_command(Method::POST, &path, json!({}))
            .await
            .map(drop)
    }

    /// Double-clicks the element `selector` matches, with the pointer, as a person does.
    pub async fn double_click(&self, selector: &str, timeout: Duration) -> Result<(), String> {
        let element = self.element(selector, timeout).await?;
        let origin = json!({ ELEMENT_KEY: element.0 });
        let press = [
            json!({ "type": "pointerDown", "button": 0 }),
            json!({ "type": "pointerUp", "button": 0 }),
        ];
        let mut actions =
            vec![json!({ "type": "pointerMove", "duration": 0, "origin": origin, "x": 0, "y": 0 })];
        actions.extend(press.iter().cloned());
        actions.extend(press.iter().cloned());
        let body = json!({ "actions": [{
            "type": "pointer", "id": "mouse", "parameters": { "pointerType": "mouse" }, "actions": actions,
        }]});
        self.session_command(Method::POST, "/actions", body).await?;
        self.session_command(Method::DELETE, "/actions", Value::Null)
            .await
            .map(drop)
    }

    /// Replaces the text of the input `selector` matches with `text`.
    pub async fn fill(&self, selector: &str, text: &str, timeout: Duration) -> Result<(), String> {
        let element = self.element(selector, timeout).await?;
        self.session_command(Method::POST, &format!("/element/{}/clear", element.0), json!({}))
            .await?;
        let path = format!("/element/{}/value", element.0);
        self.session_command(Method::POST, &path, json!({ "text": text }))
            .await
            .map(drop)
    }

    /// The text the element `selector` matches shows.
    pub async fn text(&self, selector: &str, timeout: Duration) -> Result<String, String> {
        let element = self.element(selector, timeout).await?;
        let value = self
            .session_command(Method::GET, &format!("/element/{}/text", element.0), Value::Null)
            .await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    /// Whether the input `selector` matches is enabled.
    pub async fn enabled(&self, selector: &str, timeout: Duration) -> Result<bool, String> {
        let element = self.element(selector, timeout).await?;
        let path = format!("/element/{}/enabled", element.0);
        Ok(self.session_command(Method::GET, &path, Value::Null).await? == json!(true))
    }

    /// Waits until the text of `selector` satisfies `wanted`, and returns it; the error
    /// names the last text seen.
    pub async fn wait_text(
        &self,
        selector: &str,
        wanted: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        let mut last = String::from("(no such element)");
        loop {
            if let Some(element) = self.find(selector).await? {
                let path = format!("/element/{}/text", element.0);
                let text = self.session_command(Method::GET, &path, Value::Null).await;
                // The page may replace the element between finding and reading it.
                if let Ok(text) = text {
                    last = text.as_str().unwrap_or_default().to_owned();
                    if wanted(&last) {
                        return Ok(last);
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(format!("{selector} still shows {last:?} after {timeout:?}"));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until no element matches `selector`.
    pub async fn wait_gone(&self, selector: &str, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        while self.find(selector).await?.is_some() {
            if Instant::now() >= deadline {
                return Err(format!("{selector} is still on the page after {timeout:?}"));
            }
            tokio::time::sleep(POLL).await;
        }
        Ok(())
    }

    /// Saves a screenshot of the page as `target/gui-screenshots/<test>-<step>.png` and
    /// returns its path.
    pub async fn screenshot(&self, step: &str) -> Result<PathBuf, String> {
        let value = self
            .session_command(Method::GET, "/screenshot", Value::Null)
            .await?;
        let png = decode_base64(value.as_str().unwrap_or_default())?;
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(SCREENSHOT_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let file: String = format!("{}-{step}", self.test)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = dir.join(format!("{file}.png"));
        std::fs::write(&path, png).map_err(|e| e.to_string())?;
        Ok(path)
    }

    /// Fails the test at `step` with `error`, leaving a screenshot of the page.
    pub async fn fail(&self, step: &str, error: String) -> ! {
        let shot = match self.screenshot(step).await {
            Ok(path) => format!("screenshot: {}", path.display()),
            Err(e) => format!("no screenshot: {e}"),
        };
        panic!("{}: step \"{step}\" failed: {error}\n{shot}", self.test);
    }
}

impl Drop for Browser {
    /// Ends the session, which quits Chromium, then chromedriver; also when a step failed.
    fn drop(&mut self) {
        use std::io::{Read as _, Write as _};
        if !self.session.is_empty()
            && let Ok(mut tcp) = std::net::TcpStream::connect(("127.0.0.1", self.port))
        {
            let _ = tcp.set_read_timeout(Some(DRIVER_START));
            let request = format!(
                "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.session, self.port
            );
            // The reply comes once Chromium has quit; its first bytes are enough.
            if tcp.write_all(request.as_bytes()).is_ok() {
                let _ = tcp.read(&mut [0; 1024]);
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// One WebDriver command to the chromedriver on `port`: its `value`, or the error it
/// reported.
async fn webdriver(port: u16, method: Method, path: &str, body: Value) -> Result<Value, String> {
    let exchange = async {
        let tcp = TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| format!("cannot reach chromedriver: {e}"))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        let body = if body.is_null() {
            Body::empty()
        } else {
            Body::from(body.to_string())
        };
        let request = Request::builder()
            .method(method.clone())
            .uri(path)
            .header("host", format!("127.0.0.1:{port}"))
            .header("content-type", "application/json")
            .body(body)
            .map_err(|e| e.to_string())?;
        let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
        let bytes = axum::body::to_bytes(Body::new(response.into_body()), 64 * 1024 * 1024)
            .await
            .map_err(|e| e.to_string())?;
        let reply: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        match reply["value"].get("error") {
            Some(error) => Err(format!("{error}: {}", reply["value"]["message"])),
            None => Ok(reply["value"].clone()),
        }
    };
    tokio::time::timeout(COMMAND_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| Err(format!("{method} {path} took longer than {COMMAND_TIMEOUT:?}")))
}

/// Starts chromedriver on a free port and waits until it says it is ready (`/status`);
/// fails naming what it printed when it does not within [`DRIVER_START`].
async fn start_driver(driver: &Path) -> (Child, u16) {
    let port = std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port for chromedriver");
    let mut child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver.display()));
    // Every line it prints, kept for the failure message; reading them also keeps it from
    // blocking on a full pipe.
    let printed = Arc::new(Mutex::new(Vec::new()));
    let stdout = child
        .stdout
        .take()
        .map(|out| Box::new(out) as Box<dyn std::io::Read + Send>);
    let stderr = child
        .stderr
        .take()
        .map(|err| Box::new(err) as Box<dyn std::io::Read + Send>);
    for output in [stdout, stderr].into_iter().flatten() {
        let printed = printed.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(output).lines().map_while(Result::ok) {
                printed.lock().expect("output lock").push(line);
            }
        });
    }
    let deadline = Instant::now() + DRIVER_START;
    loop {
        let status = webdriver(port, Method::GET, "/status", Value::Null).await;
        if status.is_ok_and(|status| status["ready"] == json!(true)) {
            return (child, port);
        }
        let exited = child.try_wait().ok().flatten();
        if exited.is_some() || Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} on port {port} was not ready within {DRIVER_START:?} ({}); it printed:\n{}",
                driver.display(),
                exited.map_or("still running".to_owned(), |status| status.to_string()),
                printed.lock().expect("output lock").join("\n")
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Standard base64 (the screenshot's encoding).
fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut bits, mut count) = (0u32, 0);
    for c in text.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        let v = value(c).ok_or_else(|| format!("not base64: {:?}", c as char))?;
        bits = (bits << 6) | u32::from(v);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    Ok(out)
}

/// Every step's result, failed with a screenshot.
pub trait OrFail<T> {
    async fn or_fail(self, browser: &Browser, step: &str) -> T;
}

impl<T> OrFail<T> for Result<T, String> {
    async fn or_fail(self, browser: &Browser, step: &str) -> T {
        match self {
            Ok(value) => value,
            Err(error) => browser.fail(step, error).await,
        }
    }
}

#[test]
fn base64_decodes_what_chromedriver_sends() {
    assert_eq!(decode_base64("iVBORw0KGgo=").unwrap(), b"\x89PNG\r\n\x1a\n");
    assert_eq!(decode_base64("YWJj").unwrap(), b"abc");
    assert!(decode_base64("a*b").is_err());
}
