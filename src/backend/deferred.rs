//! Deferred durability for a batch of acks run by one backend thread.
//!
//! The embedded store makes a write durable with a commit (two fsyncs); a thread that waits for
//! each write before starting the next gets one write per commit, which on a disk with a few
//! milliseconds per fsync caps policy acks at a few hundred per second. Inside [`collect`], a
//! store that supports it (the embedded store's `policy_acked`) queues the write for the next
//! commit and returns at once, registering how to wait for it here ([`defer`]); the caller runs
//! the whole batch, then waits for every deferred write ([`Deferred::wait`]) before answering
//! anyone, so the group commit puts a batch of acks into one commit and no answer claims a write
//! that is not durable. Stores without this (Elasticsearch, the memory store) write as before.

use std::cell::RefCell;

use super::StoreError;

/// How to wait for one deferred write.
type Wait = Box<dyn FnOnce() -> Result<(), StoreError>>;

thread_local! {
    /// The writes deferred by the [`collect`] running on this thread (`None`: not in one).
    static DEFERRED: RefCell<Option<Vec<Wait>>> = const { RefCell::new(None) };
}

/// The writes one call inside [`collect`] deferred.
#[must_use = "a deferred write must be waited for before its result is reported"]
pub struct Deferred(Vec<Wait>);

impl Deferred {
    /// Waits for every deferred write; the first failure, if any.
    pub fn wait(self) -> Result<(), StoreError> {
        let mut first = Ok(());
        for wait in self.0 {
            if let Err(e) = wait() {
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        first
    }

    /// Number of deferred writes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when nothing was deferred.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// True inside [`collect`] on this thread: a store may defer a write's durability.
pub fn active() -> bool {
    DEFERRED.with(|d| d.borrow().is_some())
}

/// Registers how to wait for a write queued inside [`collect`]. Outside one, waits at once.
pub fn defer(wait: impl FnOnce() -> Result<(), StoreError> + 'static) -> Result<(), StoreError> {
    let wait: Wait = Box::new(wait);
    let rest = DEFERRED.with(|d| match d.borrow_mut().as_mut() {
        Some(list) => {
            list.push(wait);
            None
        }
        None => Some(wait),
    });
    match rest {
        Some(wait) => wait(),
        None => Ok(()),
    }
}

/// Runs `f` with deferral on; returns its result and the writes it deferred. Not reentrant: a
/// nested call collects its own writes and restores the outer list.
pub fn collect<R>(f: impl FnOnce() -> R) -> (R, Deferred) {
    let outer = DEFERRED.with(|d| d.borrow_mut().replace(Vec::new()));
    // Restores the outer state even if `f` unwinds (tests; release builds abort on panic).
    struct Restore(Option<Option<Vec<Wait>>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(outer) = self.0.take() {
                DEFERRED.with(|d| *d.borrow_mut() = outer);
            }
        }
    }
    let mut restore = Restore(Some(outer));
    let result = f();
    let mine = DEFERRED.with(|d| d.borrow_mut().take()).unwrap_or_default();
    if let Some(outer) = restore.0.take() {
        DEFERRED.with(|d| *d.borrow_mut() = outer);
    }
    (result, Deferred(mine))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    #[test]
    fn outside_collect_a_write_is_waited_for_at_once() {
        assert!(!active());
        let waited = Rc::new(Cell::new(false));
        let w = Rc::clone(&waited);
        assert!(defer(move || {
            w.set(true);
            Ok(())
        })
        .is_ok());
        assert!(waited.get());
    }

    #[test]
    fn inside_collect_writes_wait_until_asked_and_report_the_first_failure() {
        let waited = Rc::new(Cell::new(0));
        let (answer, deferred) = collect(|| {
            assert!(active());
            for i in 0..3 {
                let w = Rc::clone(&waited);
                let r = defer(move || {
                    w.set(w.get() + 1);
                    if i == 1 {
                        Err(StoreError::NotFound)
                    } else {
                        Ok(())
                    }
                });
                assert!(r.is_ok(), "deferred writes report success until waited for");
            }
            7
        });
        assert!(!active());
        assert_eq!(answer, 7);
        assert_eq!(deferred.len(), 3);
        assert_eq!(waited.get(), 0, "nothing waited before wait()");
        assert!(matches!(deferred.wait(), Err(StoreError::NotFound)));
        assert_eq!(waited.get(), 3, "every write is waited for, failed or not");
    }

    #[test]
    fn nested_collects_keep_their_own_writes() {
        let ((), outer) = collect(|| {
            let _ = defer(|| Ok(()));
            let ((), inner) = collect(|| {
                let _ = defer(|| Ok(()));
                let _ = defer(|| Ok(()));
            });
            assert_eq!(inner.len(), 2);
            assert!(inner.wait().is_ok());
            assert!(active());
        });
        assert_eq!(outer.len(), 1);
        assert!(outer.wait().is_ok());
    }
}
