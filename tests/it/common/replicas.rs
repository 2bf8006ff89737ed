//! A production-like deployment on loopback: the real `portcullis` binary as several replicas on
//! one fresh PostgreSQL database, configured by environment only (as the container image is),
//! behind nginx started from `deploy/nginx/portcullis.conf.template`. Nothing is left running:
//! replicas are killed on drop, nginx is stopped, the database dropped.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Backend, TestDatabase};

pub const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
const NGINX_TEMPLATE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/nginx/portcullis.conf.template"
);
/// The image's user (Dockerfile: distroless `nonroot`). When the tests run as root, the
/// replicas drop to it, so they are shown to need no privilege and no writable file.
const IMAGE_UID: u32 = 65532;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Run the CLI with `env` (and nothing else from our environment), `stdin` as its input.
pub fn cli(env: &[(String, String)], args: &[&str], stdin: &str) -> Result<Value, String> {
    use std::io::Write;
    let mut child = std::process::Command::new(BIN)
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn portcullis: {e}"))?;
    if let Some(mut input) = child.stdin.take() {
        input
            .write_all(stdin.as_bytes())
            .map_err(|e| e.to_string())?;
    }
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(format!(
            "portcullis {args:?}: {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("portcullis {args:?}: {e}"))
}

/// Run the CLI with `env` only; did it exit 0? (`portcullis healthcheck`, as the image's
/// HEALTHCHECK runs it.)
pub fn cli_status(env: &[(String, String)], args: &[&str]) -> bool {
    std::process::Command::new(BIN)
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// One `portcullis serve` process; its stderr (JSON logs) is appended to `log`.
pub struct Replica {
    pub port: u16,
    pub log: PathBuf,
    /// Run as the image's uid when the tests run as root (a SQLite file in a private temporary
    /// directory would not be writable then).
    pub as_image_user: bool,
    env: Vec<(String, String)>,
    child: Option<tokio::process::Child>,
}

impl Replica {
    /// A replica listening on `port` with `shared` settings.
    pub fn new(port: u16, log: PathBuf, shared: &[(String, String)]) -> Self {
        let mut env = shared.to_vec();
        env.push(("PORTCULLIS_LISTEN".into(), format!("127.0.0.1:{port}")));
        // Each replica its own metrics port: the default one is shared by nobody here.
        env.push(("PORTCULLIS_METRICS_LISTEN".into(), "127.0.0.1:0".into()));
        Self {
            port,
            log,
            as_image_user: true,
            env,
            child: None,
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The environment this replica runs with: the only configuration it has.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    pub fn start(&mut self) {
        assert!(self.child.is_none(), "replica {} already runs", self.port);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("replica log");
        let mut command = tokio::process::Command::new(BIN);
        command
            .arg("serve")
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .kill_on_drop(true);
        // SAFETY: geteuid(2) has no preconditions.
        if self.as_image_user && unsafe { libc::geteuid() } == 0 {
            command.uid(IMAGE_UID).gid(IMAGE_UID);
        }
        self.child = Some(command.spawn().expect("spawn portcullis serve"));
    }

    /// Poll `/readyz` until it answers 200; fail with the log if the process exits instead.
    pub async fn wait_ready(&mut self, http: &reqwest::Client) {
        let url = format!("http://{}/readyz", self.addr());
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "replica {} exited with {status} before ready:\n{}",
                        self.port,
                        self.log_text()
                    );
                }
            }
            if let Ok(response) = http.get(&url).send().await {
                if response.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "replica {} not ready in 30s:\n{}",
            self.port,
            self.log_text()
        );
    }

    /// SIGTERM, as an orchestrator stops a container, and wait for the exit.
    pub async fn terminate(&mut self) -> ExitStatus {
        self.sigterm();
        self.wait_exit().await
    }

    pub fn sigterm(&self) {
        let child = self.child.as_ref().expect("replica runs");
        let pid = child.id().expect("pid") as libc::pid_t;
        // SAFETY: kill(2) on the child we spawned and have not reaped.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0, "SIGTERM");
    }

    pub async fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("replica runs");
        tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .expect("replica exits within its shutdown grace")
            .expect("wait for replica")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its JSON log lines.
    pub fn log_lines(&self) -> Vec<Value> {
        self.log_text()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }
}

/// One line of nginx's access log (`log_format portcullis` in the template).
#[derive(Debug, Clone)]
pub struct Access {
    pub method: String,
    pub path: String,
    pub status: u16,
    /// Every replica tried, in order: more than one when nginx moved on to the next.
    pub upstreams: Vec<String>,
}

impl Access {
    fn parse(line: &str) -> Option<Self> {
        let mut quoted = line.split('"');
        let request = quoted.nth(1)?;
        let rest = quoted.next()?;
        let (method, path) = request.split_once(' ')?;
        let status = rest.split_whitespace().next()?.parse().ok()?;
        let upstream = rest.split("upstream=").nth(1)?;
        let upstream = upstream.split(" upstream_status=").next()?;
        Some(Self {
            method: method.into(),
            path: path.into(),
            status,
            upstreams: upstream.split(", ").map(str::to_string).collect(),
        })
    }

    /// The replica that answered.
    pub fn upstream(&self) -> &str {
        self.upstreams.last().map(String::as_str).unwrap_or("")
    }
}

/// nginx on loopback, from the repository's template, everything under its own directory.
pub struct Nginx {
    pub port: u16,
    dir: PathBuf,
    child: std::process::Child,
}

fn find_nginx() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("NGINX") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join("nginx"))
        .find(|candidate| candidate.is_file())
}

impl Nginx {
    pub async fn start(dir: &Path, replicas: &[String]) -> Self {
        let binary = find_nginx().unwrap_or_else(|| {
            panic!(
                "nginx is required by the multi-replica test: install Debian's package \
                 (`apt-get install nginx`, as .ci/run does) or set NGINX to its path"
            )
        });
        assert_eq!(replicas.len(), 3, "the template has three upstream servers");
        let port = free_port();
        let conf = std::fs::read_to_string(NGINX_TEMPLATE)
            .expect("deploy/nginx/portcullis.conf.template")
            .replace("__LISTEN__", &format!("127.0.0.1:{port}"))
            .replace("__REPLICA_1__", &replicas[0])
            .replace("__REPLICA_2__", &replicas[1])
            .replace("__REPLICA_3__", &replicas[2]);
        let dir = dir.join("nginx");
        std::fs::create_dir_all(dir.join("logs")).expect("nginx logs dir");
        std::fs::create_dir_all(dir.join("temp")).expect("nginx temp dir");
        std::fs::write(dir.join("nginx.conf"), conf).expect("nginx.conf");
        let prefix = format!("{}/", dir.display());
        let error_log = dir.join("logs/error.log");
        let conf_file = dir.join("nginx.conf");
        let output = File::create(dir.join("logs/stderr.log")).expect("nginx stderr");
        let child = std::process::Command::new(&binary)
            .arg("-p")
            .arg(&prefix)
            .arg("-e")
            .arg(&error_log)
            .arg("-c")
            .arg(&conf_file)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("stderr log"))
            .stderr(output)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        let mut nginx = Self { port, dir, child };
        nginx.wait_listening().await;
        nginx
    }

    async fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("nginx exited with {status}:\n{}", self.error_log());
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("nginx is not listening:\n{}", self.error_log());
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn error_log(&self) -> String {
        ["logs/stderr.log", "logs/error.log"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.join(f)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Every request nginx has finished, in order.
    pub fn access_log(&self) -> Vec<Access> {
        std::fs::read_to_string(self.dir.join("logs/access.log"))
            .unwrap_or_default()
            .lines()
            .map(|line| Access::parse(line).unwrap_or_else(|| panic!("access log line: {line}")))
            .collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers and exits; SIGKILL only if it does not.
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) on the child we spawned and have not reaped.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Three replicas behind nginx on a fresh PostgreSQL database.
pub struct Deployment {
    // Fields drop in order: processes first, then their directory and database.
    pub nginx: Nginx,
    pub replicas: Vec<Replica>,
    /// The configuration every replica and CLI call shares (the replicas add their listen
    /// address): environment variables only, as in the container image.
    pub env: Vec<(String, String)>,
    pub http: reqwest::Client,
    dir: tempfile::TempDir,
    pub db: TestDatabase,
}

impl Deployment {
    /// Start nginx and `replicas` × `portcullis serve` with `settings` added to the image's
    /// environment; wait until every replica is ready.
    pub async fn start(settings: &[(&str, &str)]) -> Self {
        let db = TestDatabase::create(Backend::Postgres).await;
        let dir = tempfile::tempdir().expect("tempdir");
        // nginx workers run unprivileged and use temp/ for large bodies.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let nginx = Nginx::start(dir.path(), &addrs).await;
        // What the Dockerfile sets, then what an operator adds: the shared database and the
        // balancer's address as the issuer.
        let mut env: Vec<(String, String)> = vec![
            ("PORTCULLIS_LOG_FORMAT".into(), "json".into()),
            ("PORTCULLIS_DATABASE_URL".into(), db.url.clone()),
            ("PORTCULLIS_ISSUER".into(), nginx.base()),
        ];
        env.extend(settings.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut replicas: Vec<Replica> = ports
            .iter()
            .enumerate()
            .map(|(i, port)| Replica::new(*port, dir.path().join(format!("replica-{i}.log")), &env))
            .collect();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client");
        // All three at once on an empty database, as an orchestrator starts them: migrations,
        // the default server and its first key must each happen once.
        for replica in &mut replicas {
            replica.start();
        }
        for replica in &mut replicas {
            replica.wait_ready(&http).await;
        }
        Self {
            nginx,
            replicas,
            env,
            http,
            dir,
            db,
        }
    }

    pub fn base(&self) -> String {
        self.nginx.base()
    }

    pub fn cli(&self, args: &[&str]) -> Value {
        cli(&self.env, args, "").unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn cli_with_stdin(&self, args: &[&str], stdin: &str) -> Value {
        cli(&self.env, args, stdin).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Which replica listens on `addr` (an nginx upstream address).
    pub fn replica_at(&self, addr: &str) -> Option<usize> {
        self.replicas.iter().position(|r| r.addr() == addr)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
