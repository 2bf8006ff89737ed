//! Headless Chromium driven over WebDriver (chromedriver + fantoccini), for tests that go
//! through the real HTML pages as a person would.
//!
//! `Browser::start()` spawns `chromedriver` on a loopback port of its own choosing and opens a
//! session on a new, empty Chromium profile with the flags this machine needs (no sandbox as
//! root, no GPU, and none of Chromium's own background networking: the machine has no network
//! beyond the package registries, and those connections would be refused or stall start-up).
//! Every WebDriver command is bounded.
//!
//! Without chromedriver on `PATH` (or in `$CHROMEDRIVER`) `start` returns `None`; use
//! [`Browser::start_or_skip`], which skips the test with a message locally and fails it when
//! `CI` is set, so CI cannot go green without running the browser tests.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use tempfile::TempDir;

/// How long chromedriver gets to answer `/status`, and a page to reach an expected URL.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
const NAVIGATION_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one WebDriver command (opening the session included) may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// A chromedriver process and one WebDriver session in headless Chromium.
///
/// Call [`Browser::close`] at the end of a test to end the session cleanly. If the test panics
/// first, `Drop` kills chromedriver and every Chromium process it started (they share a process
/// group of their own), then removes the profile directory.
pub struct Browser {
    client: Option<Client>,
    chromedriver: Child,
    /// Removed when the `Browser` is dropped, after the processes using it are gone.
    profile: TempDir,
    /// chromedriver's log, printed when the session cannot be opened.
    log: PathBuf,
}

impl Browser {
    /// Start chromedriver and a headless Chromium session, or `None` if chromedriver is not
    /// installed. Panics if it is installed but does not work.
    pub async fn start() -> Option<Browser> {
        let chromedriver = find_chromedriver()?;
        let started = Instant::now();
        let profile = tempfile::Builder::new()
            .prefix("portcullis-chromium-")
            .tempdir()
            .expect("temporary Chromium profile directory");
        let log = profile.path().with_extension("chromedriver.log");
        // Port 0: chromedriver binds a port the kernel chooses and names it on stdout, so no
        // other process can take it between choosing and binding.
        let mut child = Command::new(&chromedriver)
            .arg("--port=0")
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            // Its own process group, so Drop can end chromedriver and Chromium together.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", chromedriver.display()));
        let port = reported_port(child.stdout.take().expect("stdout is piped"));
        // From here on, Drop cleans up whatever happens.
        let mut browser = Browser {
            client: None,
            chromedriver: child,
            profile,
            log,
        };
        let port = browser.wait_for_port(port).await;
        let webdriver = format!("http://127.0.0.1:{port}");
        browser.wait_until_ready(&webdriver).await;

        let mut args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--window-size=1280,900".into(),
        ];
        args.push(format!(
            "--user-data-dir={}",
            browser.profile.path().display()
        ));
        let mut chrome_options = serde_json::json!({ "args": args });
        if let Some(binary) = find_chromium() {
            chrome_options["binary"] = binary.display().to_string().into();
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), "chrome".into());
        capabilities.insert("goog:chromeOptions".into(), chrome_options);

        let client = within(
            "open a session",
            ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities)
                .connect(&webdriver),
        )
        .await;
        match client {
            Ok(client) => browser.client = Some(client),
            Err(e) => panic!(
                "cannot open a Chromium session through {}: {e}\nchromedriver log:\n{}",
                chromedriver.display(),
                browser.log_tail()
            ),
        }
        eprintln!(
            "browser: chromedriver + headless Chromium ready in {} ms",
            started.elapsed().as_millis()
        );
        Some(browser)
    }

    /// [`Browser::start`], or `None` after printing why the test is skipped. When `CI` is set a
    /// missing chromedriver fails the test instead: CI must run the browser tests.
    pub async fn start_or_skip(test: &str) -> Option<Browser> {
        if let Some(browser) = Browser::start().await {
            return Some(browser);
        }
        let why = "chromedriver is not installed (apt-get install chromium chromium-driver, \
                   or set CHROMEDRIVER to its path)";
        let in_ci = std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"));
        if in_ci {
            panic!("{test}: {why}; CI is set, so the browser tests must run");
        }
        eprintln!("{test}: skipped: {why}");
        None
    }

    pub fn client(&self) -> &Client {
        self.client.as_ref().expect("session is open")
    }

    /// Navigate to `url` and wait for the page to load.
    pub async fn goto(&self, url: &str) {
        within(&format!("goto {url}"), self.client().goto(url))
            .await
            .unwrap_or_else(|e| panic!("goto {url}: {e}"));
    }

    /// Type `value` into the form field named `name` (after clearing it).
    pub async fn fill(&self, name: &str, value: &str) {
        let selector = format!("[name=\"{name}\"]");
        let field = self.find(&selector).await;
        within(&format!("clear {selector}"), field.clear())
            .await
            .unwrap_or_else(|e| panic!("clear {selector}: {e}"));
        within(&format!("type into {selector}"), field.send_keys(value))
            .await
            .unwrap_or_else(|e| panic!("type into {selector}: {e}"));
    }

    /// Click the element matching the CSS selector `css`.
    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        within(&format!("click {css}"), element.click())
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// The URL the browser is on now.
    pub async fn current_url(&self) -> url::Url {
        within("current URL", self.client().current_url())
            .await
            .expect("current URL")
    }

    /// Wait until the browser's URL starts with `prefix` (a form submission navigates
    /// asynchronously), and return it. Panics with the page's URL and text on timeout.
    pub async fn wait_for_url(&self, prefix: &str) -> url::Url {
        let deadline = Instant::now() + NAVIGATION_TIMEOUT;
        loop {
            let url = self.current_url().await;
            if url.as_str().starts_with(prefix) {
                return url;
            }
            if Instant::now() > deadline {
                let text = self.page_text().await;
                panic!("the browser did not reach {prefix}; it is on {url}, showing:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The visible text of the page (for failure messages).
    pub async fn page_text(&self) -> String {
        match within("find body", self.client().find(Locator::Css("body"))).await {
            Ok(body) => within("body text", body.text()).await.unwrap_or_default(),
            Err(e) => format!("(no body: {e})"),
        }
    }

    /// End the WebDriver session (Chromium exits), then stop chromedriver.
    pub async fn close(mut self) {
        if let Some(client) = self.client.take() {
            if let Err(e) = within("close the session", client.close()).await {
                eprintln!("browser: closing the session: {e}");
            }
        }
        // Drop stops chromedriver and removes the profile.
    }

    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        match within(
            &format!("find {css}"),
            self.client().find(Locator::Css(css)),
        )
        .await
        {
            Ok(element) => element,
            Err(e) => {
                let url = self.current_url().await;
                let text = self.page_text().await;
                panic!("no element {css} on {url}: {e}\npage text:\n{text}");
            }
        }
    }

    /// The port chromedriver reports on stdout once it listens.
    async fn wait_for_port(&mut self, reported: std::sync::mpsc::Receiver<u16>) -> u16 {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(port) = reported.try_recv() {
                return port;
            }
            if let Ok(Some(exit)) = self.chromedriver.try_wait() {
                panic!("chromedriver exited at start ({exit})\n{}", self.log_tail());
            }
            if Instant::now() > deadline {
                panic!(
                    "chromedriver did not report its port within {STARTUP_TIMEOUT:?}\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn wait_until_ready(&mut self, webdriver: &str) {
        let status = format!("{webdriver}/status");
        let http = super::http();
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(response) = http.get(&status).send().await {
                if response.status().is_success() {
                    return;
                }
            }
            if let Ok(Some(exit)) = self.chromedriver.try_wait() {
                panic!("chromedriver exited at start ({exit})\n{}", self.log_tail());
            }
            if Instant::now() > deadline {
                panic!(
                    "chromedriver did not answer {status} within {STARTUP_TIMEOUT:?}\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The session's client only holds a connection to chromedriver; killing the process
        // group ends chromedriver and every Chromium process it started.
        self.client.take();
        let pgid = self.chromedriver.id() as libc::pid_t;
        // SAFETY: kill(2) with a negative pid signals the process group we created at spawn.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
        let _ = super::process::wait_within(&mut self.chromedriver, Duration::from_secs(10));
        let _ = std::fs::remove_file(&self.log);
        // `profile` (a TempDir) is removed when the fields drop, after this.
    }
}

/// `$CHROMEDRIVER`, else `chromedriver` on `PATH`.
fn find_chromedriver() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMEDRIVER") {
        let path = PathBuf::from(path);
        return is_executable(&path).then_some(path);
    }
    on_path("chromedriver")
}

/// `$CHROME_BIN`, else Debian's `chromium` on `PATH`; `None` lets chromedriver look for
/// Chrome in its usual places.
fn find_chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROME_BIN") {
        return Some(PathBuf::from(path));
    }
    on_path("chromium")
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Read chromedriver's stdout on a thread of its own: the port from its line "ChromeDriver
/// was started successfully on port N.", then the rest, so the pipe never fills.
fn reported_port(stdout: std::process::ChildStdout) -> std::sync::mpsc::Receiver<u16> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split("started successfully on port ").nth(1) {
                if let Ok(port) = rest.trim_end_matches('.').trim().parse::<u16>() {
                    let _ = tx.send(port);
                }
            }
        }
    });
    rx
}

/// A WebDriver command, bounded: a Chromium that stops answering fails the test.
async fn within<T>(what: &str, command: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(COMMAND_TIMEOUT, command)
        .await
        .unwrap_or_else(|_| panic!("WebDriver: {what} did not finish within {COMMAND_TIMEOUT:?}"))
}

/// A stand-in for a client application: answers `GET /cb` with 200 and a plain page, so a
/// test can let the browser land on its redirect URI and read the parameters from the URL.
pub struct Callback {
    /// `http://127.0.0.1:PORT/cb`
    pub redirect_uri: String,
    task: tokio::task::JoinHandle<()>,
}

impl Callback {
    pub async fn start() -> Callback {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the callback listener");
        let addr = listener.local_addr().expect("callback addr");
        let app = axum::Router::new().route("/cb", axum::routing::get(callback_page));
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("serve the callback");
        });
        Callback {
            redirect_uri: format!("http://{addr}/cb"),
            task,
        }
    }
}

impl Drop for Callback {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn callback_page() -> axum::response::Html<&'static str> {
    axum::response::Html(
        "<!doctype html><html><head><title>Callback</title></head>\
         <body><p>Signed in; back at the client.</p></body></html>",
    )
}

/// The value of query parameter `name` in `url`, if present.
pub fn query_param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}
