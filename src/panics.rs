//! What a panic does: it is logged as one ERROR line through the configured logger (text or
//! ECS JSON, so it reaches the same place as every other line) and the process aborts, in every
//! build profile, so the service manager restarts it (the systemd unit has
//! `Restart=on-failure`; agents reconnect and retry, and the store is crash-safe).
//!
//! Why abort rather than catch the panic in the worker: a panicking worker may hold the store's
//! or the job queue's lock (poisoned for every later job) or leave a half-applied change in
//! memory; a clean restart from the crash-safe store is the state we can vouch for. Without the
//! hook, a debug build would lose the worker thread silently (its connection hangs, and after
//! the last worker every request), and a release build (`panic = "abort"`) would die with a
//! message outside the log format.

/// Installs the hook. Call once, after the logger.
pub fn install() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("unnamed");
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".to_owned());
        log::error!(
            "panic in thread {name} at {location}: {message}; aborting so that the service \
             manager restarts fleet-edge"
        );
        log::logger().flush();
        std::process::abort();
    }));
}

/// Test-only failpoint, compiled into debug builds only (the integration tests' binary; never a
/// release build): with `FLEET_EDGE_FAILPOINT=worker-panic-on-enroll`, a backend worker panics
/// on the next enroll job, so the tests can check what a worker panic does.
#[cfg(debug_assertions)]
pub fn failpoint(job: &crate::backend::workers::Job) {
    if matches!(job, crate::backend::workers::Job::Enroll(_)) {
        failpoint_enroll();
    }
}

/// [`failpoint`] for an enroll job (also run inside a batch of jobs).
#[cfg(debug_assertions)]
pub fn failpoint_enroll() {
    if std::env::var("FLEET_EDGE_FAILPOINT").is_ok_and(|v| v == "worker-panic-on-enroll") {
        #[allow(clippy::panic)]
        {
            panic!("failpoint worker-panic-on-enroll");
        }
    }
}
