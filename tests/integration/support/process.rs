//! The fleet-edge binary under test, started with a clean environment. Its stderr (the log) is
//! collected by a thread; readiness is the `listening on <url>` log line (`start` waits for it,
//! `spawn` + `wait_ready` let a test act while the server is still starting).

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_fleet-edge");

#[derive(Default)]
struct Log {
    text: Mutex<String>,
    /// stderr alone: the log, without the quick start's stdout.
    stderr: Mutex<String>,
    /// Output streams read to their end (the process closed them: 2 once it has exited).
    ended: Mutex<usize>,
    ended_changed: Condvar,
    changed: Condvar,
}

/// A running fleet-edge.
pub struct FleetEdge {
    child: Child,
    pub addr: SocketAddr,
    pub url: String,
    pub data_dir: PathBuf,
    log: Arc<Log>,
    _tmp: Option<TempDir>,
}

fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    // The debug server's embedded store skips fsync (src/backend/local/unsynced.rs): the tests'
    // thousands of commits must not wait on the CI machine's disk.
    cmd.env_clear()
        .env("FLEET_EDGE_TEST_NO_FSYNC", "1")
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

impl FleetEdge {
    /// Starts on 127.0.0.1 with a free port and a fresh data dir, plus `args`.
    pub fn start(args: &[&str]) -> Self {
        let tmp = TempDir::new("data");
        let dir = tmp.path().to_path_buf();
        let mut server = Self::start_in(&dir, args, &[]);
        server._tmp = Some(tmp);
        server
    }

    /// Starts with the given data dir and environment; returns once it is listening.
    pub fn start_in(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut server = Self::spawn_in(data_dir, args, env);
        server.wait_ready(Duration::from_secs(30));
        server
    }

    /// Starts on 127.0.0.1 with a free port and a fresh data dir, plus `args`, and returns at
    /// once, before it is listening ([`FleetEdge::wait_ready`] waits for that).
    pub fn spawn(args: &[&str]) -> Self {
        let tmp = TempDir::new("data");
        let dir = tmp.path().to_path_buf();
        let mut server = Self::spawn_in(&dir, args, &[]);
        server._tmp = Some(tmp);
        server
    }

    /// Spawns with the given data dir and environment without waiting for readiness.
    pub fn spawn_in(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = data_dir.to_string_lossy().into_owned();
        let mut full = vec![
            "--fleet-server-host",
            "127.0.0.1",
            "--fleet-server-port",
            "0",
            "--data-dir",
            &dir,
            "--management-port",
            "0",
        ];
        full.extend_from_slice(args);
        let mut child = command(&full, env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn fleet-edge");
        let log = Arc::new(Log::default());
        // stdout (the quick start) and stderr (the log) land in one transcript.
        let stderr: Box<dyn Read + Send> = Box::new(child.stderr.take().unwrap());
        let stdout: Box<dyn Read + Send> = Box::new(child.stdout.take().unwrap());
        for (stream, is_stderr) in [(stderr, true), (stdout, false)] {
            let sink = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if is_stderr {
                        let mut only = sink.stderr.lock().unwrap();
                        only.push_str(&line);
                        only.push('\n');
                    }
                    let mut text = sink.text.lock().unwrap();
                    text.push_str(&line);
                    text.push('\n');
                    sink.changed.notify_all();
                }
                *sink.ended.lock().unwrap() += 1;
                sink.ended_changed.notify_all();
            });
        }
        Self {
            child,
            addr: "127.0.0.1:1".parse().unwrap(),
            url: String::new(),
            data_dir: data_dir.to_path_buf(),
            log,
            _tmp: None,
        }
    }

    /// Waits up to `within` for the `listening on <url>` line and takes the address from it;
    /// panics with the log if it does not come.
    pub fn wait_ready(&mut self, within: Duration) {
        let line = self
            .wait_for_log("listening on ", within)
            .unwrap_or_else(|| panic!("fleet-edge did not start; log:\n{}", self.log()));
        let url = line
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap()
            .to_owned();
        self.addr = url.rsplit("//").next().unwrap().parse().unwrap();
        self.url = url;
    }

    pub fn log(&self) -> String {
        self.log.text.lock().unwrap().clone()
    }

    /// The log alone (stderr), without what the server prints on stdout for the operator.
    pub fn stderr_log(&self) -> String {
        self.log.stderr.lock().unwrap().clone()
    }

    /// Waits until a log line contains `needle`; returns that line.
    pub fn wait_for_log(&self, needle: &str, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        let mut text = self.log.text.lock().unwrap();
        loop {
            if let Some(line) = text.lines().find(|l| l.contains(needle)) {
                return Some(line.to_owned());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            text = self.log.changed.wait_timeout(text, left).unwrap().0;
        }
    }

    /// Sends SIGKILL: no drain, no flush (crash-safety tests).
    pub fn kill9(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", &self.pid().to_string()])
            .status();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM (through kill(1): the tests have no unsafe code either).
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Sends SIGHUP (a reload).
    pub fn sighup(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// How many log lines contain `needle`.
    pub fn count_log(&self, needle: &str) -> usize {
        self.log.text.lock().unwrap().matches(needle).count()
    }

    /// Waits until `count` log lines contain `needle`.
    pub fn wait_for_log_count(&self, needle: &str, count: usize, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let mut text = self.log.text.lock().unwrap();
        loop {
            if text.matches(needle).count() >= count {
                return true;
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            text = self.log.changed.wait_timeout(text, left).unwrap().0;
        }
    }

    /// Waits for the process to exit, up to `within`.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The log is complete once both streams are read to their end: a test reading
                // it right after the exit must see the last lines.
                let mut ended = self.log.ended.lock().unwrap();
                while *ended < 2 {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    ended = self.log.ended_changed.wait_timeout(ended, left).unwrap().0;
                }
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Peak resident set size of the server so far, in KiB (`VmHWM`).
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap()
    }
}

impl Drop for FleetEdge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs fleet-edge to completion (bounded); returns (status, stdout, stderr).
pub fn run_to_exit(args: &[&str], env: &[(&str, &str)]) -> (ExitStatus, String, String) {
    let mut child = command(args, env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn fleet-edge");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("fleet-edge {args:?} did not exit within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status,
        out_thread.join().unwrap(),
        err_thread.join().unwrap(),
    )
}
