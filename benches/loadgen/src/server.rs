//! The fleet-edge process under load: started from its release binary in embedded mode on
//! 127.0.0.1 with a free port and a temporary data dir, its quick start read from stdout (the
//! enrollment token, the CA path) and its address from the log on stderr (`listening on
//! https://ADDR`); stopped with SIGTERM (through kill(1), no unsafe code) and, if it lingers,
//! SIGKILL. Also the `/proc` readings the report is made of: RSS, CPU ticks, descriptor limits,
//! the kernel's TCP counters; and the policy-file edit that rolls out a new revision.
//!
//! Neighbours: `main.rs` decides the flags; `scenarios.rs` drives the phases.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How to start the server.
#[derive(Clone, Debug)]
pub struct ServerSpec {
    /// The fleet-edge binary.
    pub binary: PathBuf,
    /// Its data dir (embedded store, certificates, policies).
    pub data_dir: PathBuf,
    /// `--checkin-long-poll`.
    pub long_poll: String,
    /// `--checkin-jitter`.
    pub jitter: String,
    /// `--max-connections`.
    pub max_connections: usize,
    /// `--log-level`.
    pub log_level: String,
    /// Serve plain HTTP (`--fleet-server-insecure-http`) instead of TLS.
    pub plain: bool,
    /// More arguments (Elasticsearch mode: hosts, service token, policy, timeouts); with them
    /// there is no quick start to read, the CA is the data dir's generated one.
    pub extra: Vec<String>,
}

impl ServerSpec {
    /// The command line, as reported.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "--fleet-server-host".to_owned(),
            "127.0.0.1".to_owned(),
            "--fleet-server-port".to_owned(),
            "0".to_owned(),
            // A free port: the default 8222 may be taken by another server on this machine.
            "--management-port".to_owned(),
            "0".to_owned(),
            "--data-dir".to_owned(),
            self.data_dir.display().to_string(),
            "--checkin-long-poll".to_owned(),
            self.long_poll.clone(),
            "--checkin-jitter".to_owned(),
            self.jitter.clone(),
            "--max-connections".to_owned(),
            self.max_connections.to_string(),
            "--log-level".to_owned(),
            self.log_level.clone(),
        ];
        if self.plain {
            args.push("--fleet-server-insecure-http".to_owned());
        }
        args.extend(self.extra.iter().cloned());
        args
    }
}

/// Counts of the server's log lines by level, and the last lines (for error reports).
#[derive(Default, Debug)]
pub struct LogTail {
    /// WARN lines.
    pub warnings: u64,
    /// ERROR lines.
    pub errors: u64,
    /// The last lines, newest last.
    pub last: Vec<String>,
}

/// A running fleet-edge.
pub struct ServerProc {
    child: Child,
    /// Its process id.
    pub pid: u32,
    /// Where it listens.
    pub addr: SocketAddr,
    /// `https` or `http`.
    pub tls: bool,
    /// The enrollment token of the default policy.
    pub token: String,
    /// The CA agents trust (`--certificate-authorities=`), when TLS.
    pub ca_path: Option<PathBuf>,
    /// The data dir.
    pub data_dir: PathBuf,
    /// The log, counted.
    pub log: Arc<Mutex<LogTail>>,
    /// When it was started (its periodic tasks run on timers armed at its start).
    pub started: Instant,
}

fn level_of(line: &str) -> Option<&str> {
    line.split_whitespace()
        .nth(1)
        .filter(|l| matches!(*l, "WARN" | "ERROR"))
}

impl ServerProc {
    /// Starts the server and waits (up to 60 s) for its address and quick start.
    pub fn start(spec: &ServerSpec) -> Result<ServerProc, String> {
        std::fs::create_dir_all(&spec.data_dir)
            .map_err(|e| format!("cannot create {}: {e}", spec.data_dir.display()))?;
        let started = Instant::now();
        let mut child = Command::new(&spec.binary)
            .args(spec.args())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start {} ({e}); build it first with `cargo build --release`",
                    spec.binary.display()
                )
            })?;
        let (tx, rx) = mpsc::channel::<(bool, String)>();
        let log = Arc::new(Mutex::new(LogTail::default()));
        let streams: Vec<(bool, Box<dyn Read + Send>)> = [
            child
                .stdout
                .take()
                .map(|s| (false, Box::new(s) as Box<dyn Read + Send>)),
            child
                .stderr
                .take()
                .map(|s| (true, Box::new(s) as Box<dyn Read + Send>)),
        ]
        .into_iter()
        .flatten()
        .collect();
        for (is_log, stream) in streams {
            let tx = tx.clone();
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if is_log {
                        if let Ok(mut tail) = log.lock() {
                            match level_of(&line) {
                                Some("WARN") => tail.warnings += 1,
                                Some("ERROR") => tail.errors += 1,
                                _ => {}
                            }
                            tail.last.push(line.clone());
                            if tail.last.len() > 50 {
                                tail.last.remove(0);
                            }
                        }
                    }
                    let _ = tx.send((is_log, line));
                }
            });
        }
        let pid = child.id();
        let mut server = ServerProc {
            child,
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: !spec.plain,
            token: String::new(),
            ca_path: None,
            data_dir: spec.data_dir.clone(),
            log,
            started,
        };
        server.await_ready(&rx, Duration::from_secs(60), !spec.extra.is_empty())?;
        Ok(server)
    }

    fn await_ready(
        &mut self,
        rx: &Receiver<(bool, String)>,
        within: Duration,
        no_quick_start: bool,
    ) -> Result<(), String> {
        let deadline = Instant::now() + within;
        let (mut have_addr, mut have_token) = (false, no_quick_start);
        if no_quick_start && self.tls {
            self.ca_path = Some(self.data_dir.join("certs/ca.crt"));
        }
        while !(have_addr && have_token) {
            let left = deadline.saturating_duration_since(Instant::now());
            let (is_log, line) = match rx.recv_timeout(left) {
                Ok(x) => x,
                Err(_) => {
                    let tail = self
                        .log
                        .lock()
                        .map(|t| t.last.join("\n"))
                        .unwrap_or_default();
                    return Err(format!("fleet-edge did not become ready; its log:\n{tail}"));
                }
            };
            if is_log {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let url = rest.split_whitespace().next().unwrap_or_default();
                    let hostport = url.rsplit("//").next().unwrap_or_default();
                    self.addr = hostport
                        .parse()
                        .map_err(|e| format!("cannot parse the address in {line:?}: {e}"))?;
                    have_addr = true;
                }
            } else if line.trim_start().starts_with("sudo elastic-agent install") {
                for word in line.split_whitespace() {
                    if let Some(t) = word.strip_prefix("--enrollment-token=") {
                        self.token = t.to_owned();
                    } else if let Some(p) = word.strip_prefix("--certificate-authorities=") {
                        self.ca_path = Some(PathBuf::from(p));
                    }
                }
                have_token = !self.token.is_empty();
            }
        }
        if self.tls && self.ca_path.is_none() {
            return Err("the quick start named no --certificate-authorities file".into());
        }
        Ok(())
    }

    /// Stops the server: SIGTERM, then SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Resident set size now, in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> u64 {
        status_field(self.pid, "VmRSS:").unwrap_or(0)
    }

    /// Write system calls made so far (`syscw` of `/proc/<pid>/io`: file writes, the store's and
    /// the log's; socket sends are not counted), 0 if unreadable.
    pub fn write_calls(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/io", self.pid))
            .ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|l| l.strip_prefix("syscw:"))
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(0)
    }

    /// Peak resident set size, in KiB (`VmHWM`).
    pub fn peak_rss_kib(&self) -> u64 {
        status_field(self.pid, "VmHWM:").unwrap_or(0)
    }

    /// Resets the peak (`VmHWM`) to the current RSS, by writing `5` to `/proc/<pid>/clear_refs`
    /// (Linux 4.0+; the process must be ours), so that [`Self::peak_rss_kib`] read later is the
    /// peak since this call.
    pub fn reset_peak_rss(&self) -> Result<(), String> {
        let path = format!("/proc/{}/clear_refs", self.pid);
        std::fs::write(&path, "5").map_err(|e| format!("cannot reset the peak RSS ({path}): {e}"))
    }

    /// User + system CPU time used so far, in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        cpu_ticks(&format!("/proc/{}/stat", self.pid))
    }

    /// `Max open files` soft limit of the server process.
    pub fn nofile_limit(&self) -> Option<u64> {
        let text = std::fs::read_to_string(format!("/proc/{}/limits", self.pid)).ok()?;
        text.lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|v| v.parse().ok())
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        if self.alive() {
            self.stop(Duration::from_secs(5));
        }
    }
}

/// A `kB` field of `/proc/<pid>/status`.
pub fn status_field(pid: u32, name: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// utime + stime of a `/proc/.../stat` file, in clock ticks.
pub fn cpu_ticks(path: &str) -> u64 {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let after = text.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the command name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let get = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    get(11) + get(12)
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 if that fails).
pub fn clock_ticks_per_sec() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// The kernel's TCP counters that show listen-queue overflows and resets
/// (`/proc/net/netstat` TcpExt and `/proc/net/snmp` Tcp).
pub fn tcp_counters() -> Vec<(String, i64)> {
    const WANTED: &[&str] = &[
        "TcpExt:ListenOverflows",
        "TcpExt:ListenDrops",
        "TcpExt:TCPBacklogDrop",
        "TcpExt:TCPTimeouts",
        "Tcp:AttemptFails",
        "Tcp:EstabResets",
        "Tcp:RetransSegs",
        "Tcp:OutRsts",
    ];
    let mut out = Vec::new();
    for file in ["/proc/net/netstat", "/proc/net/snmp"] {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        for pair in lines.chunks(2) {
            let [names, values] = pair else { continue };
            let names: Vec<&str> = names.split_whitespace().collect();
            let values: Vec<&str> = values.split_whitespace().collect();
            let Some(prefix) = names.first() else {
                continue;
            };
            for (n, v) in names.iter().zip(values.iter()).skip(1) {
                let key = format!("{prefix}{n}");
                if WANTED.contains(&key.as_str()) {
                    out.push((key, v.parse().unwrap_or(0)));
                }
            }
        }
    }
    out
}

/// Counter deltas between two [`tcp_counters`] readings (non-zero ones only).
pub fn tcp_delta(before: &[(String, i64)], after: &[(String, i64)]) -> Vec<(String, i64)> {
    after
        .iter()
        .filter_map(|(k, v)| {
            let old = before.iter().find(|(b, _)| b == k).map_or(0, |(_, b)| *b);
            (v - old != 0).then(|| (k.clone(), v - old))
        })
        .collect()
}

/// Rewrites `<data-dir>/policies/fleet-edge-default.json` with a changed name (atomically: a
/// temporary file renamed over it), which the server installs as the next revision.
pub fn bump_policy(data_dir: &Path, generation: u32) -> Result<(), String> {
    let path = data_dir.join("policies").join("fleet-edge-default.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut policy: Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
    let Some(obj) = policy.as_object_mut() else {
        return Err(format!("{} is not a JSON object", path.display()));
    };
    obj.insert(
        "name".into(),
        Value::from(format!(
            "fleet-edge default policy (loadgen rollout {generation})"
        )),
    );
    let tmp = data_dir
        .join("policies")
        .join("fleet-edge-default.json.loadgen-tmp");
    let body = serde_json::to_string_pretty(&policy).unwrap_or_default() + "\n";
    std::fs::write(&tmp, body).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("cannot rename onto {}: {e}", path.display()))
}

/// A fresh temporary directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `<tmp>/fleet-edge-loadgen-<pid>-<label>`.
    pub fn new(label: &str) -> Result<TempDir, String> {
        let path =
            std::env::temp_dir().join(format!("fleet-edge-loadgen-{}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        Ok(TempDir(path))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
