//! Test hooks of the memory store: what test doubles used to do by wrapping a whole [`Store`]
//! (forwarding every method to change one). A test watches `authenticate` calls with
//! [`MemoryStore::on_authenticate`] and holds a named method at a [`Gate`] with
//! [`MemoryStore::gate`]: the call reads its answer, then waits while the gate is shut, so a test
//! can make a race happen at an exact point. Unused hooks cost one uncontended lock per call.
//!
//! [`Store`]: super::Store
//! [`MemoryStore::on_authenticate`]: super::memory::MemoryStore::on_authenticate
//! [`MemoryStore::gate`]: super::memory::MemoryStore::gate

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::ApiKey;

/// The longest a call waits at a shut gate.
pub const HOLD_LIMIT: Duration = Duration::from_secs(60);

/// The store methods a test can hold at a gate (after they have read their answer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `agent_by_enrollment_id` (the enroll dedupe read).
    AgentByEnrollmentId,
    /// `pending_actions` (a checkin's snapshot of its actions).
    PendingActions,
    /// `changes` (the change feed: holding it makes the monitor slow).
    Changes,
}

impl Method {
    const ALL: [Method; 3] = [
        Method::AgentByEnrollmentId,
        Method::PendingActions,
        Method::Changes,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// Where calls of one method wait while it is shut.
#[derive(Debug, Default)]
pub struct Gate {
    /// (shut, calls waiting now).
    state: Mutex<(bool, usize)>,
    changed: Condvar,
}

impl Gate {
    fn lock(&self) -> MutexGuard<'_, (bool, usize)> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Calls arriving from now on wait here until [`Gate::open`].
    pub fn shut(&self) {
        self.lock().0 = true;
    }

    /// Releases the waiting calls and lets the next ones through.
    pub fn open(&self) {
        self.lock().0 = false;
        self.changed.notify_all();
    }

    /// Waits up to `within` until a call is waiting at the gate; whether one is.
    pub fn wait_held(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let mut state = self.lock();
        while state.1 == 0 {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            state = match self.changed.wait_timeout(state, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        true
    }

    /// Blocks the calling (backend) thread while the gate is shut, at most [`HOLD_LIMIT`]: a
    /// test that fails before opening it must not leave a backend that cannot be joined.
    fn pass(&self) {
        let deadline = Instant::now() + HOLD_LIMIT;
        let mut state = self.lock();
        if !state.0 {
            return;
        }
        state.1 += 1;
        self.changed.notify_all();
        while state.0 {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            state = match self.changed.wait_timeout(state, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        state.1 -= 1;
    }
}

type AuthenticateHook = Arc<dyn Fn(&ApiKey) + Send + Sync>;

/// The hooks of one memory store.
#[derive(Default)]
pub struct Hooks {
    authenticate: Mutex<Option<AuthenticateHook>>,
    gates: Mutex<[Option<Arc<Gate>>; Method::ALL.len()]>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks").finish_non_exhaustive()
    }
}

impl Hooks {
    /// Runs `hook` in every later `authenticate`, after the answer is read and outside the
    /// store's lock (the hook may call the store).
    pub fn on_authenticate(&self, hook: AuthenticateHook) {
        *self
            .authenticate
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(hook);
    }

    /// The gate of `method`, made (open) on first use.
    pub fn gate(&self, method: Method) -> Arc<Gate> {
        let mut gates = self.gates.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(gates[method.index()].get_or_insert_with(Arc::default))
    }

    /// Called by `authenticate` once it has its answer.
    pub(super) fn authenticated(&self, key: &ApiKey) {
        let hook = self
            .authenticate
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(hook) = hook {
            hook(key);
        }
    }

    /// Called by a gated method once it has its answer: waits while its gate is shut.
    pub(super) fn pass(&self, method: Method) {
        let gate =
            self.gates.lock().unwrap_or_else(PoisonError::into_inner)[method.index()].clone();
        if let Some(gate) = gate {
            gate.pass();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shut_gate_holds_calls_until_opened() {
        let hooks = Arc::new(Hooks::default());
        let gate = hooks.gate(Method::PendingActions);
        assert!(!gate.wait_held(Duration::ZERO), "nothing waits yet");
        hooks.pass(Method::PendingActions);
        gate.shut();
        hooks.pass(Method::Changes);
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let caller = Arc::clone(&hooks);
        let held = std::thread::spawn(move || {
            caller.pass(Method::PendingActions);
            done_tx.send(()).unwrap();
        });
        assert!(gate.wait_held(Duration::from_secs(10)));
        assert!(done_rx.try_recv().is_err(), "held while shut");
        gate.open();
        done_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        held.join().unwrap();
    }

    #[test]
    fn the_authenticate_hook_sees_every_call() {
        let hooks = Hooks::default();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        hooks.on_authenticate(Arc::new(move |k: &ApiKey| {
            record.lock().unwrap().push(k.id.clone())
        }));
        for id in ["a", "b"] {
            hooks.authenticated(&ApiKey {
                id: id.into(),
                secret: "s".into(),
            });
        }
        assert_eq!(*seen.lock().unwrap(), ["a", "b"]);
    }
}
