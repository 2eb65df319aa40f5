//! The event loop's side of SIGHUP: the [`Reloader`] runs on a backend worker (it reads files,
//! may decrypt a key; a thread of its own when there is no store), its result comes back through the waker, and the loop applies it:
//! new TLS sessions use the new configuration while established ones keep the one they started
//! with; the management API checks the new token. A SIGHUP during a reload runs one more after it.

use std::sync::{Arc, Mutex};

use super::Server;
use crate::net::reload::{Reloaded, Reloader};

/// The reload machinery the loop owns.
#[derive(Default)]
pub(super) struct ReloadState {
    reloader: Option<Arc<Mutex<Reloader>>>,
    result: Arc<Mutex<Option<Result<Reloaded, String>>>>,
    running: bool,
    again: bool,
}

impl Server {
    /// Makes SIGHUP reload what `reloader` knows how to read again (without one, SIGHUP is
    /// logged and ignored).
    pub fn on_reload(&mut self, reloader: Reloader) {
        self.reload.reloader = Some(Arc::new(Mutex::new(reloader)));
    }

    /// Adds a step to every reload (embedded mode: scan the policy files).
    pub fn add_reload_hook(&mut self, hook: crate::net::reload::ReloadHook) {
        if let Some(reloader) = &self.reload.reloader {
            reloader
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .add_hook(hook);
        }
    }

    /// SIGHUP arrived.
    pub(super) fn start_reload(&mut self) {
        let Some(reloader) = self.reload.reloader.clone() else {
            log::info!("SIGHUP: this server has nothing to reload");
            return;
        };
        if self.reload.running {
            self.reload.again = true;
            return;
        }
        self.reload.running = true;
        let result = Arc::clone(&self.reload.result);
        let waker = Arc::clone(&self.waker);
        let reload: crate::backend::workers::Task = Arc::new(move || {
            let outcome = reloader.lock().unwrap_or_else(|e| e.into_inner()).reload();
            *result.lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome);
            let _ = waker.wake();
        });
        // A backend worker runs it (the thread budget of `lib.rs`); a thread of its own only
        // when there is no store, or its queue is full.
        if let Some(backend) = &self.backend {
            if backend.submit_task(Arc::clone(&reload)) {
                return;
            }
        }
        let spawned = std::thread::Builder::new()
            .name("fleet-edge-reload".into())
            .spawn(move || reload());
        if let Err(e) = spawned {
            self.reload.running = false;
            log::warn!("reload (SIGHUP) failed, keeping the running configuration: cannot start its thread: {e}");
        }
    }

    /// Applies a finished reload, if one finished (called when the waker fires).
    pub(super) fn finish_reload(&mut self) {
        let outcome = self
            .reload
            .result
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let Some(outcome) = outcome else {
            return;
        };
        self.reload.running = false;
        match outcome {
            Ok(reloaded) => {
                if let Some(tls) = reloaded.tls {
                    if self.gate.tls.is_some() {
                        self.gate.tls = Some(tls);
                    }
                }
                if let Some(token) = reloaded.admin_token {
                    self.fleet.set_admin_token(token);
                }
                log::info!("{}", reloaded.summary);
            }
            Err(e) => {
                log::warn!("reload (SIGHUP) failed, keeping the running configuration: {e}")
            }
        }
        if std::mem::take(&mut self.reload.again) {
            self.start_reload();
        }
    }
}
