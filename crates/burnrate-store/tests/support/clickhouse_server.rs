//! A real `clickhouse-server` for tests (Debian's 18.16 in CI), started on free loopback
//! ports in a temporary folder and stopped when dropped. Shared by the store's and the
//! binary's tests (`#[path]`). Without the server installed, tests using it fail.

#![allow(dead_code, reason = "each test crate uses part of it")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support: a failure here is the test's failure"
)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A ClickHouse server for one test, stopped when dropped.
pub struct Server {
    child: Option<Child>,
    config: String,
    http: u16,
    /// `clickhouse://127.0.0.1:PORT/burnrate`.
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts a server with its own data folder, in UTC, and waits until it answers.
pub fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let (http, tcp) = (free_port(), free_port());
    let root = dir.path().display();
    std::fs::write(
        dir.path().join("users.xml"),
        "<?xml version=\"1.0\"?><yandex><profiles><default></default></profiles>\
         <users><default><password></password><networks><ip>127.0.0.1</ip></networks>\
         <profile>default</profile><quota>default</quota></default></users>\
         <quotas><default></default></quotas></yandex>",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("config.xml"),
        format!(
            "<?xml version=\"1.0\"?><yandex><logger><level>warning</level><console>1</console>\
             </logger><http_port>{http}</http_port><tcp_port>{tcp}</tcp_port>\
             <listen_host>127.0.0.1</listen_host><path>{root}/data/</path>\
             <tmp_path>{root}/tmp/</tmp_path><user_files_path>{root}/files/</user_files_path>\
             <users_config>{root}/users.xml</users_config><default_profile>default\
             </default_profile><default_database>default</default_database>\
             <timezone>UTC</timezone><mark_cache_size>268435456</mark_cache_size></yandex>"
        ),
    )
    .unwrap();
    let mut server = Server {
        child: None,
        config: format!("{root}/config.xml"),
        http,
        url: format!("clickhouse://127.0.0.1:{http}/burnrate"),
        _dir: dir,
    };
    server.resume();
    server
}

impl Server {
    /// `http://127.0.0.1:PORT/`.
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.http)
    }

    /// Kills the server (its data stays).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same ports and data, and waits until it answers.
    pub fn resume(&mut self) {
        let child = Command::new("clickhouse-server")
            .arg(format!("--config-file={}", self.config))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("clickhouse-server runs (apt-get install clickhouse-server; .ci/run does)");
        self.child = Some(child);
        // Ready once it answers; a server that never does fails the test after 600 tries.
        let ping = format!("{}ping", self.http_url());
        let ready = (0..600).any(|_| {
            let up = reqwest::blocking::get(&ping).is_ok_and(|r| r.status().is_success());
            if !up {
                std::thread::sleep(Duration::from_millis(100));
            }
            up
        });
        assert!(
            ready,
            "clickhouse-server did not answer on port {}",
            self.http
        );
    }
}
