//! Test support: temporary directories, a PKI generated per test, the fleet-edge process under
//! test, and small HTTP/1.1 clients over plain TCP or rustls.

pub mod agent;
pub mod client;
pub mod inproc;
pub mod pki;
pub mod process;
pub mod stores;

pub use client::{Client, HttpResponse};
pub use pki::Pki;
pub use process::{run_to_exit, FleetEdge};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("fleet-edge-it-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The minimal raw request for `GET /api/status`.
pub const STATUS_REQUEST: &[u8] =
    b"GET /api/status HTTP/1.1\r\nHost: localhost\r\nUser-Agent: Elastic Agent v9.2.1\r\n\r\n";
