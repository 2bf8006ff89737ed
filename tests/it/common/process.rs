//! Bounded waits for the processes and HTTP requests of the tests: a child that never exits or
//! a server that never answers fails its test with a message instead of hanging the suite.

use std::io::{Read, Write};
use std::process::{Child, Command, Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long one run of the CLI (or any short-lived child) may take.
pub const PROCESS_LIMIT: Duration = Duration::from_secs(60);
/// How long one HTTP request of a test may take, connection included.
pub const HTTP_LIMIT: Duration = Duration::from_secs(30);

/// A reqwest client builder with the tests' request timeout; every client starts here.
pub fn http_client() -> reqwest::ClientBuilder {
    // reqwest's rustls (the server's back-channel logout client, src/logout.rs) takes the
    // process's TLS provider, as the server installs it; the tests' clients share that build.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(HTTP_LIMIT)
        .connect_timeout(Duration::from_secs(5))
}

/// A plain HTTP client with the tests' request timeout.
pub fn http() -> reqwest::Client {
    http_client().build().expect("http client")
}

/// `Command::output`, bounded: the child is killed, and the test fails with its standard
/// error, when it runs longer than `PROCESS_LIMIT`.
pub trait OutputWithin {
    /// Run to completion with `stdin` (if any) as its input, within `limit`.
    fn output_within(&mut self, stdin: Option<&[u8]>, limit: Duration) -> Output;

    /// Run with no input, within `PROCESS_LIMIT`.
    fn bounded_output(&mut self) -> Output {
        self.output_within(None, PROCESS_LIMIT)
    }

    /// Run with `stdin` as its input, within `PROCESS_LIMIT`.
    fn bounded_output_with_stdin(&mut self, stdin: &[u8]) -> Output {
        self.output_within(Some(stdin), PROCESS_LIMIT)
    }
}

impl OutputWithin for Command {
    fn output_within(&mut self, stdin: Option<&[u8]>, limit: Duration) -> Output {
        self.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = self
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {self:?}: {e}"));
        // Each pipe has its own thread, so neither a child that does not read its input nor
        // one that writes a lot can block the wait below.
        let writer = stdin.map(|input| {
            let mut pipe = child.stdin.take().expect("stdin is piped");
            let input = input.to_vec();
            std::thread::spawn(move || {
                // A command that exits without reading (a usage error) breaks the pipe: its
                // exit status reports that, not this write.
                let _ = pipe.write_all(&input);
            })
        });
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        let status = match wait_within(&mut child, limit) {
            Some(status) => status,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                let stderr =
                    String::from_utf8_lossy(&stderr.join().unwrap_or_default()).into_owned();
                panic!(
                    "{self:?} did not exit within {limit:?} and was killed; its stderr:\n{stderr}"
                );
            }
        };
        if let Some(writer) = writer {
            let _ = writer.join();
        }
        Output {
            status,
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
        }
    }
}

/// Wait for `child` to exit, at most `limit`; `None` if it still runs.
pub fn wait_within(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => return None,
            Err(e) => panic!("wait for a child: {e}"),
        }
    }
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}
