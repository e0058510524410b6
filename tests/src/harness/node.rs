//! One agent process. Ports are ephemeral (`0`): the HTTP address is read from the
//! `==> HTTP API listening on http://ADDR` line the agent prints.

use super::wait::{wait_until, TIMEOUT};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

/// How to start a node.
#[derive(Debug, Clone, Default)]
pub struct NodeOptions {
    /// Run with `-dev` (temporary storage) instead of `-server -bootstrap-expect=1 -data-dir`.
    pub dev: bool,
    /// Node name.
    pub name: Option<String>,
    /// Extra arguments after `agent`.
    pub extra: Vec<String>,
    /// Files written into a config directory (passed as `-config-dir`) before start.
    pub config: Vec<(String, String)>,
    /// A client agent (no `-server`).
    pub client: bool,
    /// `-bootstrap-expect` for servers (default 1).
    pub bootstrap_expect: Option<u32>,
    /// Do not wait for a leader and self-registration (cluster members started one by one).
    pub no_wait: bool,
    /// Extra environment variables for the agent process.
    pub env: Vec<(String, String)>,
}

/// A running (or stopped) agent process.
pub struct Node {
    child: Option<Child>,
    /// Keeps the data directory for restarts; removed on drop.
    pub data_dir: tempfile::TempDir,
    opts: NodeOptions,
    /// `http://127.0.0.1:PORT`
    pub http: String,
    /// The gossip (serf LAN) address, `127.0.0.1:PORT`.
    pub serf: String,
    /// The WAN gossip address of a server (printed before the LAN one).
    pub wan: String,
    /// The DNS address (UDP and TCP), `127.0.0.1:PORT`.
    pub dns: String,
    /// `https://127.0.0.1:PORT` when the agent serves HTTPS (`ports.https`).
    pub https: String,
    /// Everything the process printed (stdout and stderr).
    pub output: Arc<Mutex<String>>,
}

fn pump<R: Read + Send + 'static>(
    r: R,
    out: Arc<Mutex<String>>,
    tx: Option<std::sync::mpsc::Sender<String>>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            if let Some(tx) = &tx {
                if let Some(addr) = line.strip_prefix("==> HTTP API listening on ") {
                    let _ = tx.send(format!("http {}", addr.trim()));
                }
                if let Some(addr) = line.strip_prefix("==> HTTPS API listening on ") {
                    let _ = tx.send(format!("https {}", addr.trim()));
                }
                if let Some(addr) = line.strip_prefix("==> DNS listening on ") {
                    let a = addr.split_whitespace().next().unwrap_or_default();
                    let _ = tx.send(format!("dns {a}"));
                }
                if let Some(addr) = line.strip_prefix("==> Serf WAN listening on ") {
                    let _ = tx.send(format!("wan {}", addr.trim()));
                }
                if let Some(addr) = line.strip_prefix("==> Serf LAN listening on ") {
                    let _ = tx.send(format!("serf {}", addr.trim()));
                }
            }
            let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
            o.push_str(&line);
            o.push('\n');
        }
    });
}

impl Node {
    /// Start a node and wait until it has a leader and has registered itself.
    pub fn start(opts: NodeOptions) -> Node {
        let data_dir = tempfile::Builder::new()
            .prefix("praetor-test-")
            .tempdir()
            .expect("temp dir");
        let mut n = Node {
            child: None,
            data_dir,
            opts,
            http: String::new(),
            serf: String::new(),
            wan: String::new(),
            dns: String::new(),
            https: String::new(),
            output: Arc::new(Mutex::new(String::new())),
        };
        for (name, body) in &n.opts.config {
            std::fs::write(n.config_dir().join(name), body).expect("write config file");
        }
        n.spawn();
        n
    }

    /// Start a dev-mode node.
    pub fn dev() -> Node {
        Node::start(NodeOptions {
            dev: true,
            ..Default::default()
        })
    }

    /// Start a single persistent server with a data directory.
    pub fn server() -> Node {
        Node::start(NodeOptions::default())
    }

    /// The node name.
    pub fn name(&self) -> String {
        self.opts.name.clone().unwrap_or_else(|| "node1".into())
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        self.data_dir.path()
    }

    fn args(&self) -> Vec<String> {
        let mut a: Vec<String> = vec!["agent".into()];
        if self.opts.dev {
            a.push("-dev".into());
        } else {
            if !self.opts.client {
                a.push("-server".into());
                a.push(format!(
                    "-bootstrap-expect={}",
                    self.opts.bootstrap_expect.unwrap_or(1)
                ));
            }
            a.extend(["-bind=127.0.0.1", "-client=127.0.0.1"].map(String::from));
            a.push(format!("-data-dir={}", self.dir().join("data").display()));
        }
        a.push(format!("-node={}", self.name()));
        a.extend(
            [
                "-http-port=0",
                "-server-port=0",
                "-dns-port=0",
                "-serf-lan-port=0",
                "-serf-wan-port=0",
            ]
            .map(String::from),
        );
        if !self.opts.config.is_empty() {
            a.push(format!("-config-dir={}", self.config_dir().display()));
        }
        a.extend(self.opts.extra.iter().cloned());
        a
    }

    fn spawn(&mut self) {
        let mut child = Command::new(super::praetor_bin())
            .args(self.args())
            .envs(self.opts.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn praetor");
        let (tx, rx) = std::sync::mpsc::channel();
        pump(
            child.stdout.take().expect("stdout"),
            self.output.clone(),
            Some(tx),
        );
        pump(
            child.stderr.take().expect("stderr"),
            self.output.clone(),
            None,
        );
        self.child = Some(child);
        self.http.clear();
        self.serf.clear();
        while self.http.is_empty() || self.serf.is_empty() {
            match rx.recv_timeout(TIMEOUT) {
                Ok(line) => match line.split_once(' ') {
                    Some(("http", a)) => self.http = a.to_string(),
                    Some(("serf", a)) => self.serf = a.to_string(),
                    Some(("wan", a)) => self.wan = a.to_string(),
                    Some(("dns", a)) => self.dns = a.to_string(),
                    Some(("https", a)) => self.https = a.to_string(),
                    _ => {}
                },
                Err(_) => panic!(
                    "agent did not print its HTTP and serf addresses; output:\n{}",
                    self.log()
                ),
            }
        }
        if !self.opts.no_wait {
            self.wait_ready();
        }
    }

    /// Wait until the node knows a leader and has registered itself in the catalog.
    pub fn wait_ready(&self) {
        let leader = self.url("/v1/status/leader");
        let me = self.url(&format!("/v1/catalog/node/{}", self.name()));
        let deadline = std::time::Instant::now() + TIMEOUT;
        loop {
            let has_leader = reqwest::blocking::get(&leader)
                .ok()
                .and_then(|r| r.text().ok())
                .map(|b| b.trim() != "\"\"" && !b.trim().is_empty() && !b.contains("No "))
                .unwrap_or(false);
            let registered = has_leader
                && reqwest::blocking::get(&me)
                    .map(|r| r.status().is_success())
                    .unwrap_or(false);
            if registered {
                return;
            }
            if std::time::Instant::now() >= deadline {
                panic!(
                    "{} not ready after {TIMEOUT:?} (leader known: {has_leader}); output:\n{}",
                    self.name(),
                    self.log()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Start a configured node without waiting for it (to observe start-up failures).
    pub fn try_start(args: &[&str]) -> std::process::Output {
        Command::new(super::praetor_bin())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run praetor")
    }

    /// Full URL for a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.http, path)
    }

    /// The process output so far.
    pub fn log(&self) -> String {
        self.output
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// `kill -9` the process (data directory kept).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Send a signal by name (`HUP`, `INT`, `TERM`) to the process.
    pub fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(c.id().to_string())
                .status();
        }
    }

    /// Restart on the same data directory (after `kill`).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Wait for the process to exit by itself.
    pub fn wait_exit(&mut self) -> Option<std::process::ExitStatus> {
        let c = self.child.as_mut()?;
        Some(wait_until(TIMEOUT, "process exit", || {
            c.try_wait().ok().flatten()
        }))
    }

    /// Run a CLI verb against this node; returns (exit code, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        self.cli_stdin(args, None)
    }

    /// Run a CLI verb with data on standard input.
    pub fn cli_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> (i32, String, String) {
        use std::io::Write;
        let mut child = Command::new(super::praetor_bin())
            .args(args)
            .env("CONSUL_HTTP_ADDR", &self.http)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run praetor cli");
        if let Some(data) = stdin {
            let mut s = child.stdin.take().expect("stdin");
            s.write_all(data).expect("write stdin");
        }
        let out = child.wait_with_output().expect("cli output");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The agent process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A config directory inside the node's temp dir.
    pub fn config_dir(&self) -> PathBuf {
        let d = self.dir().join("config");
        std::fs::create_dir_all(&d).expect("config dir");
        d
    }
}

impl Drop for Node {
    /// Stop gracefully (SIGTERM, so a `-dev` agent removes its temporary data directory),
    /// then kill whatever is left.
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
            while std::time::Instant::now() < deadline {
                if matches!(c.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        self.kill();
    }
}
