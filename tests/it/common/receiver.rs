//! An application's back-channel logout endpoint, for the single-logout tests: a real HTTP
//! listener on loopback that records every `logout_token` POSTed to it and answers each request
//! as its script says (a status, a dropped connection, or no answer at all).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// How the receiver answers one request.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    Status(u16),
    /// Close the connection without a response.
    Drop,
    /// Read the request and never answer (until the sender gives up).
    Hang,
}

#[derive(Default)]
struct Shared {
    script: VecDeque<Answer>,
    tokens: Vec<String>,
}

pub struct Receiver {
    pub uri: String,
    shared: Arc<Mutex<Shared>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Listen on a free loopback port; requests beyond `script` are answered 200.
    pub async fn start(script: &[Answer]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let uri = format!(
            "http://{}/backchannel-logout",
            listener.local_addr().expect("addr")
        );
        let shared = Arc::new(Mutex::new(Shared {
            script: script.iter().copied().collect(),
            tokens: Vec::new(),
        }));
        let state = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    let Some(body) = read_request(&mut stream).await else {
                        return;
                    };
                    let answer = {
                        let mut shared = state.lock().unwrap();
                        if let Some((_, token)) = url::form_urlencoded::parse(body.as_bytes())
                            .find(|(k, _)| k == "logout_token")
                        {
                            shared.tokens.push(token.into_owned());
                        }
                        shared.script.pop_front().unwrap_or(Answer::Status(200))
                    };
                    match answer {
                        Answer::Status(status) => {
                            let response = format!(
                                "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                            );
                            let _ = stream.write_all(response.as_bytes()).await;
                        }
                        Answer::Drop => drop(stream),
                        Answer::Hang => {
                            tokio::time::sleep(Duration::from_secs(120)).await;
                        }
                    }
                });
            }
        });
        Self { uri, shared, task }
    }

    /// Every logout token received so far, in order.
    pub fn tokens(&self) -> Vec<String> {
        self.shared.lock().unwrap().tokens.clone()
    }

    /// Wait until at least `n` tokens arrived, at most `limit`; the tokens then.
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<String> {
        let started = Instant::now();
        loop {
            let tokens = self.tokens();
            if tokens.len() >= n || started.elapsed() >= limit {
                return tokens;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Read one HTTP/1.1 request with a Content-Length body; its body, or `None` on a bad request.
async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<String> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..header_end]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buffer.len() < header_end + length {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    Some(String::from_utf8_lossy(&buffer[header_end..header_end + length]).into_owned())
}
