//! Running the real binary (`burnrate serve`, `burnrate mock-provider`) and the official
//! Python SDKs from black-box tests.

#![allow(dead_code, reason = "each test file uses a different part")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support: a failure here is the test's failure"
)]

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The binary under test.
pub fn burnrate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_burnrate"))
}

/// A child process that announced `listening on http://ADDR` on stderr.
pub struct Server {
    /// The child.
    pub child: Child,
    /// `http://ADDR`.
    pub url: String,
    /// The whole line that announced it.
    pub listening_line: String,
    /// Everything it wrote to stderr so far (filled by a thread).
    pub stderr: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `command` and waits (up to a minute) for its listening line.
    pub fn start(mut command: Command) -> Server {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the burnrate binary");
        let stderr = child.stderr.take().unwrap();
        let (lines_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut seen = Vec::new();
        loop {
            match lines.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => {
                    if let Some(url) = listening_url(&line) {
                        return Server {
                            child,
                            url,
                            listening_line: line,
                            stderr: lines,
                        };
                    }
                    seen.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("no listening line; stderr so far:\n{}", seen.join("\n"));
                }
            }
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        self.child.wait().unwrap()
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill_hard(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Stderr lines received so far.
    pub fn drain_stderr(&self) -> Vec<String> {
        self.stderr.try_iter().collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `http://HOST:PORT` from a line containing `listening on http://HOST:PORT`.
fn listening_url(line: &str) -> Option<String> {
    let rest = &line[line.find("listening on http://")? + "listening on http://".len()..];
    let (host, after) = rest.split_once(':')?;
    let port: String = after.chars().take_while(char::is_ascii_digit).collect();
    (!port.is_empty()).then(|| format!("http://{host}:{port}"))
}

/// Starts the mock provider on a random port.
pub fn mock_provider() -> Server {
    let mut command = burnrate();
    command.args(["mock-provider", "--listen", "127.0.0.1:0"]);
    Server::start(command)
}

/// The admin token every black-box gateway runs with.
pub const ADMIN_TOKEN: &str = "admin-blackbox-token";

/// The gateway key every black-box config uses.
pub const KEY: &str = "br-blackbox-key";

/// Writes a gateway config in `dir` pointing both providers at `mock`; returns its path.
pub fn write_config(dir: &Path, mock: &str, extra: &str) -> PathBuf {
    let hash: String = burnrate_sha256(KEY);
    let text = format!(
        r#"[server]
listen = "127.0.0.1:0"
upstream_timeout_s = 10
shutdown_timeout_s = 10

[store]
path = "{dir}/ledger.duckdb"
journal_dir = "{dir}/journal"
fsync_interval_ms = 20
flush_interval_ms = 200

[[providers]]
name = "openai"
kind = "openai"
base_url = "{mock}/v1"
api_key_env = "BLACKBOX_OPENAI_KEY"
models = ["gpt-*", "o*", "text-embedding-*"]

[[providers]]
name = "anthropic"
kind = "anthropic"
base_url = "{mock}"
api_key_env = "BLACKBOX_ANTHROPIC_KEY"
models = ["claude-*"]

[[keys]]
id = "blackbox"
sha256 = "{hash}"
tenant_id = "blackbox-tenant"

[attribution]
require = ["tenant_id", "user_id", "feature"]
{extra}
"#,
        dir = dir.display()
    );
    let path = dir.join("burnrate.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Starts `burnrate serve --config PATH` with the upstream keys in its environment.
pub fn serve(config: &Path) -> Server {
    serve_logging(config, "warn")
}

/// [`serve`] logging at `level` (`RUST_LOG`).
pub fn serve_logging(config: &Path, level: &str) -> Server {
    let mut command = burnrate();
    command
        .args(["serve", "--config"])
        .arg(config)
        .env("BLACKBOX_OPENAI_KEY", "sk-blackbox-openai")
        .env("BLACKBOX_ANTHROPIC_KEY", "sk-blackbox-anthropic")
        .env("BURNRATE_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("RUST_LOG", level);
    Server::start(command)
}

/// `burnrate keys hash KEY`.
pub fn burnrate_sha256(key: &str) -> String {
    let output = burnrate().args(["keys", "hash", key]).output().unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// The ledger's events, read with `burnrate export`.
pub fn export(db: &Path) -> Vec<serde_json::Value> {
    json_lines(
        burnrate().args(["export", "--db"]).arg(db),
        "burnrate export",
    )
}

/// Runs `command`, which must succeed (its stderr is shown when not), and parses each line
/// of its stdout as JSON.
pub fn json_lines(command: &mut Command, what: &str) -> Vec<serde_json::Value> {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{what} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// A Python with the pinned SDKs of tests/python/requirements.txt: `BURNRATE_TEST_PYTHON`
/// when set, else a virtualenv under the cargo target directory, created on first use (from
/// PyPI) under a file lock so parallel tests build it once.
pub fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("BURNRATE_TEST_PYTHON") {
        return PathBuf::from(python);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/python");
    let requirements = root.join("requirements.txt");
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("burnrate-pyenv");
    std::fs::create_dir_all(&venv).unwrap();
    let lock = File::create(venv.with_extension("lock")).unwrap();
    lock.lock().unwrap();
    let python = venv.join("bin/python");
    let stamp = venv.join("installed-requirements.txt");
    let wanted = std::fs::read_to_string(&requirements).unwrap();
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        let made = Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(&venv)
            .status()
            .expect("python3 is needed for the SDK tests (apt-get install python3-venv)");
        assert!(made.success(), "python3 -m venv failed");
        let installed = Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(&requirements)
            .status()
            .unwrap();
        assert!(
            installed.success(),
            "pip install -r {} failed (PyPI must be reachable)",
            requirements.display()
        );
        std::fs::write(&stamp, wanted).unwrap();
    }
    python
}

/// tests/js with its pinned npm packages installed: a copy under the cargo target directory,
/// `npm ci` run on first use (from the npm registry) under a file lock. The scripts are copied
/// on every call so edits are picked up.
pub fn js_dir() -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/js");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("burnrate-js");
    std::fs::create_dir_all(&dir).unwrap();
    let lock = File::create(dir.with_extension("lock")).unwrap();
    lock.lock().unwrap();
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    let stamp = dir.join("installed-package-lock.json");
    let wanted = std::fs::read_to_string(source.join("package-lock.json")).unwrap();
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        let installed = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--silent"])
            .current_dir(&dir)
            .status()
            .expect(
                "node and npm are needed for the JS exporter tests (apt-get install nodejs npm)",
            );
        assert!(
            installed.success(),
            "npm ci in {} failed (the npm registry must be reachable)",
            dir.display()
        );
        std::fs::write(&stamp, wanted).unwrap();
    }
    dir
}

/// Path of a script in tests/python.
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/python")
        .join(name)
}

/// A throwaway `redis-server` on a free loopback port, stopped on drop. Fails (never skips)
/// when `redis-server` is not installed: CI installs it.
pub struct Redis {
    child: std::process::Child,
    /// `redis://127.0.0.1:PORT/0`.
    pub url: String,
}

impl Redis {
    /// Starts one and waits until it answers.
    pub fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Redis {
                    child,
                    url: format!("redis://127.0.0.1:{port}/0"),
                };
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("redis-server did not start on port {port}");
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Records the JSON bodies POSTed to it (a stand-in for an on-call pager's webhook).
pub struct Receiver {
    /// Where to post.
    pub url: String,
    bodies: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
}

impl Receiver {
    /// Starts listening on a free loopback port.
    pub fn start() -> Receiver {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/page", listener.local_addr().unwrap());
        let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = std::sync::Arc::clone(&bodies);
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let app = axum::Router::new().route(
                    "/page",
                    axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
                        let seen = std::sync::Arc::clone(&seen);
                        async move {
                            seen.lock().unwrap().push(body);
                            "ok"
                        }
                    }),
                );
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        Receiver { url, bodies }
    }

    /// The bodies received, once there are at least `count`.
    pub fn wait_for(&self, count: usize) -> Vec<serde_json::Value> {
        for _ in 0..400 {
            let bodies = self.bodies.lock().unwrap().clone();
            if bodies.len() >= count {
                return bodies;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("no page arrived");
    }
}
