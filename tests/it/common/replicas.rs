//! A production-like deployment on loopback: the real `portcullis` binary as several replicas on
//! one fresh PostgreSQL database, configured by environment only (as the container image is),
//! behind nginx started from `deploy/nginx/portcullis.conf.template`. Nothing is left running:
//! replicas are killed on drop, nginx is stopped, the database dropped.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Backend, OutputWithin, TestDatabase};

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
    let output = std::process::Command::new(BIN)
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .bounded_output_with_stdin(stdin.as_bytes());
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
        .bounded_output()
        .status
        .success()
}

/// The port a server was told to listen on was taken by another process between choosing it
/// and binding it: start again on another port.
#[derive(Debug)]
pub struct PortTaken;

/// Start `portcullis serve` on a free loopback port with the environment `env_for(port)`
/// gives (plus `PORTCULLIS_LISTEN`), logging to `log`, and wait until it is ready. A free
/// port can be taken before the server binds it: then it starts again on another one.
pub async fn serve_on_free_port(
    env_for: impl Fn(u16) -> Vec<(String, String)>,
    log: PathBuf,
    as_image_user: bool,
) -> Replica {
    for _ in 0..PORT_ATTEMPTS {
        let port = free_port();
        let mut replica = Replica::new(port, log.clone(), &env_for(port));
        replica.as_image_user = as_image_user;
        replica.start();
        if replica.ready(&super::http()).await.is_ok() {
            return replica;
        }
        eprintln!("port {port} was taken before portcullis serve bound it; trying another");
    }
    panic!("portcullis serve found no free port in {PORT_ATTEMPTS} attempts");
}

/// How many ports to try before giving up.
const PORT_ATTEMPTS: usize = 5;
/// How long a server or nginx gets to start.
const START_LIMIT: Duration = Duration::from_secs(30);

/// One `portcullis serve` process; its stderr (JSON logs) is appended to `log`, which is
/// printed if the test fails while the replica exists.
pub struct Replica {
    pub port: u16,
    pub log: PathBuf,
    /// Run as the image's uid when the tests run as root (a SQLite file in a private temporary
    /// directory would not be writable then).
    pub as_image_user: bool,
    env: Vec<(String, String)>,
    child: Option<tokio::process::Child>,
    /// Where this run's lines start in `log` (a restart appends to it).
    log_start: usize,
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
            log_start: 0,
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
        self.log_start = self.log_text().len();
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

    /// Wait until this run has logged that it listens (after binding its port, so the port is
    /// its own and not another process's) and answers `/readyz`; panics with the log if it
    /// exits or is not ready within `START_LIMIT`.
    pub async fn wait_ready(&mut self, http: &reqwest::Client) {
        if self.ready(http).await.is_err() {
            panic!(
                "replica {}: its port is taken by another process:\n{}",
                self.port,
                self.log_text()
            );
        }
    }

    /// [`Replica::wait_ready`], but `Err(PortTaken)` when the process exited because its port
    /// was taken.
    pub async fn ready(&mut self, http: &reqwest::Client) -> Result<(), PortTaken> {
        let url = format!("http://{}/readyz", self.addr());
        let deadline = Instant::now() + START_LIMIT;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    if self.this_run().contains("Address already in use") {
                        return Err(PortTaken);
                    }
                    panic!(
                        "replica {} exited with {status} before ready:\n{}",
                        self.port,
                        self.log_text()
                    );
                }
            }
            if self.this_run().contains(READY_LOG) {
                if let Ok(response) = http.get(&url).send().await {
                    if response.status() == 200 {
                        return Ok(());
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "replica {} not ready in {START_LIMIT:?}:\n{}",
            self.port,
            self.log_text()
        );
    }

    /// Start again on the same port (nginx knows it by its port) once it is free: another
    /// process may hold it for a moment.
    pub async fn restart(&mut self, http: &reqwest::Client) {
        for _ in 0..20 {
            self.start();
            if self.ready(http).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!("replica {}: its port stays taken", self.port);
    }

    /// The log lines of the current (or last) run.
    fn this_run(&self) -> String {
        let text = self.log_text();
        text.get(self.log_start..).unwrap_or_default().to_string()
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

    /// SIGKILL, as the kernel's OOM killer or a lost node ends a process: no shutdown at all.
    pub async fn kill_9(&mut self) -> ExitStatus {
        let child = self.child.as_ref().expect("replica runs");
        let pid = child.id().expect("pid") as libc::pid_t;
        // SAFETY: kill(2) on the child we spawned and have not reaped.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0, "SIGKILL");
        self.wait_exit().await
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

/// What `portcullis serve` logs once it listens (src/cli/serve.rs).
const READY_LOG: &str = "portcullis is ready";

impl Drop for Replica {
    fn drop(&mut self) {
        // A failing test shows what the server said (the last lines; the file is removed
        // with the test's directory).
        if std::thread::panicking() {
            let text = self.log_text();
            let lines: Vec<&str> = text.lines().collect();
            eprintln!(
                "--- portcullis serve on port {} ({}), last lines of its log:\n{}",
                self.port,
                self.log.display(),
                lines[lines.len().saturating_sub(100)..].join("\n")
            );
        }
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
    /// nginx on a free port in front of `replicas`; `Err(PortTaken)` if another process took
    /// the port before nginx could bind it.
    pub async fn start(dir: &Path, replicas: &[String]) -> Result<Self, PortTaken> {
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
        nginx.wait_listening().await?;
        Ok(nginx)
    }

    /// Wait until nginx itself answers on its port: a connection alone could be another
    /// process's that took the port first.
    async fn wait_listening(&mut self) -> Result<(), PortTaken> {
        let deadline = Instant::now() + START_LIMIT;
        while Instant::now() < deadline {
            // nginx keeps retrying a taken port for a few seconds before it exits.
            if self.error_log().contains("Address already in use") {
                return Err(PortTaken);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("nginx exited with {status}:\n{}", self.error_log());
            }
            if self.answers().await {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("nginx is not listening:\n{}", self.error_log());
    }

    /// Does nginx answer on the port? A request without `Host` is refused by nginx itself
    /// (400, `Server: nginx`), without waking an upstream (whose failures nginx would count).
    async fn answers(&self) -> bool {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let probe = async {
            let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await?;
            stream.write_all(b"GET / HTTP/1.1\r\n\r\n").await?;
            let mut answer = vec![0; 1024];
            let read = stream.read(&mut answer).await?;
            answer.truncate(read);
            std::io::Result::Ok(String::from_utf8_lossy(&answer).to_lowercase())
        };
        match tokio::time::timeout(Duration::from_secs(2), probe).await {
            Ok(Ok(answer)) => answer.contains("\r\nserver: nginx"),
            _ => false,
        }
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
        if std::thread::panicking() {
            eprintln!(
                "--- nginx on port {}, its error log:\n{}",
                self.port,
                self.error_log()
            );
        }
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
    /// environment; wait until every replica is ready. The ports are free when chosen, but
    /// another process can take one before it is bound: then everything starts again on new
    /// ports and a new database.
    pub async fn start(settings: &[(&str, &str)]) -> Self {
        for _ in 0..PORT_ATTEMPTS {
            if let Ok(deployment) = Self::try_start(settings).await {
                return deployment;
            }
            eprintln!("a port of the deployment was taken before it was bound; starting again");
        }
        panic!("no free ports for the deployment in {PORT_ATTEMPTS} attempts");
    }

    async fn try_start(settings: &[(&str, &str)]) -> Result<Self, PortTaken> {
        let db = TestDatabase::create(Backend::Postgres).await;
        let dir = tempfile::tempdir().expect("tempdir");
        // nginx workers run unprivileged and use temp/ for large bodies.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let nginx = Nginx::start(dir.path(), &addrs).await?;
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
        let http = super::http_client()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client");
        // All three at once on an empty database, as an orchestrator starts them: migrations,
        // the default server and its first key must each happen once.
        for replica in &mut replicas {
            replica.start();
        }
        for replica in &mut replicas {
            replica.ready(&http).await?;
        }
        Ok(Self {
            nginx,
            replicas,
            env,
            http,
            dir,
            db,
        })
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
