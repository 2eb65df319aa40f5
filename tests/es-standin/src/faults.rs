//! Fault injection, shared by the library API (`StandIn::faults()`) and the control endpoint
//! (`/_standin/faults`): added latency, fail the next N requests with 429/500/502/503/504 ES bodies,
//! hang requests (held until released or the client gives up), and down/up (the listener is closed
//! and every open connection reset, so clients see connection refused; `up` re-binds the same
//! address with all state intact).

use crate::error::EsError;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
struct State {
    latency: Duration,
    fail_count: u64,
    fail_status: u16,
    hang: bool,
    down: bool,
    down_until: Option<Instant>,
    failed_total: u64,
}

/// Fault switches plus the registry of open connections (to reset them on `down`).
#[derive(Debug, Default)]
pub struct Faults {
    state: Mutex<State>,
    cv: Condvar,
    conns: Mutex<HashMap<u64, TcpStream>>,
    next_conn: Mutex<u64>,
    wake: Mutex<Option<SocketAddr>>,
}

/// What the request path must do before handling a request.
#[derive(Debug)]
pub enum Gate {
    /// Handle normally.
    Pass,
    /// Answer with this error instead.
    Fail(EsError),
}

/// The ES error body for an injected status.
pub fn injected_error(status: u16) -> EsError {
    match status {
        429 => EsError::rejected(
            "rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=1024, max_coordinating_and_primary_bytes=0]",
        ),
        503 => EsError::new(503, "cluster_block_exception", "blocked by: [SERVICE_UNAVAILABLE/1/state not recovered / initialized];"),
        502 | 504 => EsError::new(status, "status_exception", format!("injected fault: HTTP {status}")),
        _ => EsError::new(status, "exception", "injected fault: internal server error"),
    }
}

impl Faults {
    fn st(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `d` of latency before every response (zero clears it).
    pub fn latency(&self, d: Duration) {
        self.st().latency = d;
    }

    /// Fails the next `n` requests with `status` (429, 500, 502, 503, 504) and an ES error body.
    pub fn fail_next(&self, n: u64, status: u16) {
        let mut s = self.st();
        s.fail_count = n;
        s.fail_status = status;
    }

    /// Holds every request (no response) until `hang(false)`.
    pub fn hang(&self, on: bool) {
        self.st().hang = on;
        self.cv.notify_all();
    }

    /// Refuses connections: closes the listener and resets open connections. `for_time` brings it
    /// back automatically.
    pub fn down(&self, for_time: Option<Duration>) {
        {
            let mut s = self.st();
            s.down = true;
            s.down_until = for_time.map(|d| Instant::now() + d);
        }
        self.cv.notify_all();
        self.reset_connections();
        self.wake_listener();
    }

    /// Accepts connections again (same address, state intact).
    pub fn up(&self) {
        {
            let mut s = self.st();
            s.down = false;
            s.down_until = None;
        }
        self.cv.notify_all();
    }

    /// Clears every fault.
    pub fn clear(&self) {
        {
            let mut s = self.st();
            let total = s.failed_total;
            *s = State {
                failed_total: total,
                ..State::default()
            };
        }
        self.cv.notify_all();
    }

    /// Whether the listener should be closed now (expires a timed `down`).
    pub fn is_down(&self) -> bool {
        let mut s = self.st();
        if s.down && s.down_until.is_some_and(|t| Instant::now() >= t) {
            s.down = false;
            s.down_until = None;
        }
        s.down
    }

    /// Blocks while down (for the accept loop); returns when up or `stop()` says so.
    pub fn wait_up(&self, stop: &dyn Fn() -> bool) {
        let mut s = self.st();
        while s.down && !stop() {
            if s.down_until.is_some_and(|t| Instant::now() >= t) {
                s.down = false;
                s.down_until = None;
                break;
            }
            s = match self.cv.wait_timeout(s, Duration::from_millis(50)) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }

    /// Applies latency/hang/fail to one request.
    pub fn gate(&self, stop: &dyn Fn() -> bool) -> Gate {
        let latency;
        {
            let mut s = self.st();
            while s.hang && !s.down && !stop() {
                s = match self.cv.wait_timeout(s, Duration::from_millis(50)) {
                    Ok((g, _)) => g,
                    Err(p) => p.into_inner().0,
                };
            }
            latency = s.latency;
            if s.fail_count > 0 {
                s.fail_count -= 1;
                s.failed_total += 1;
                let status = s.fail_status;
                drop(s);
                if !latency.is_zero() {
                    std::thread::sleep(latency);
                }
                return Gate::Fail(injected_error(status));
            }
        }
        if !latency.is_zero() {
            std::thread::sleep(latency);
        }
        Gate::Pass
    }

    /// Current settings as JSON (control endpoint).
    pub fn status(&self) -> Value {
        let s = self.st();
        json!({
            "latency_ms": s.latency.as_millis() as u64,
            "fail_next": s.fail_count,
            "fail_status": s.fail_status,
            "hang": s.hang,
            "down": s.down,
            "failed_total": s.failed_total,
        })
    }

    /// Registers an open connection; returns its id.
    pub fn register(&self, s: &TcpStream) -> Option<u64> {
        let clone = s.try_clone().ok()?;
        let mut n = self.next_conn.lock().unwrap_or_else(|p| p.into_inner());
        *n += 1;
        let id = *n;
        self.conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, clone);
        Some(id)
    }

    /// Forgets a closed connection.
    pub fn unregister(&self, id: u64) {
        self.conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    /// Resets every open connection.
    pub fn reset_connections(&self) {
        let conns = std::mem::take(&mut *self.conns.lock().unwrap_or_else(|p| p.into_inner()));
        for (_, c) in conns {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    /// Sets the address used to wake a blocking `accept`.
    pub fn set_wake(&self, a: SocketAddr) {
        *self.wake.lock().unwrap_or_else(|p| p.into_inner()) = Some(a);
    }

    /// Connects to the listener once so a blocking `accept` returns.
    pub fn wake_listener(&self) {
        let a = *self.wake.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(a) = a {
            let _ = TcpStream::connect_timeout(&a, Duration::from_millis(200));
        }
    }

    /// Wakes hung requests (shutdown).
    pub fn release_all(&self) {
        self.cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_next_counts_down() {
        let f = Faults::default();
        f.fail_next(2, 503);
        let stop = || false;
        assert!(matches!(f.gate(&stop), Gate::Fail(e) if e.status == 503));
        assert!(matches!(f.gate(&stop), Gate::Fail(_)));
        assert!(matches!(f.gate(&stop), Gate::Pass));
        assert_eq!(f.status()["failed_total"], 2);
    }

    #[test]
    fn timed_down_expires() {
        let f = Faults::default();
        f.down(Some(Duration::from_millis(10)));
        assert!(f.is_down());
        std::thread::sleep(Duration::from_millis(20));
        assert!(!f.is_down());
    }
}
