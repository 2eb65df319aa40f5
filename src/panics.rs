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
/// release build): panics when `FLEET_EDGE_FAILPOINT` names `name`, so the tests can check what
/// a panic at that site does (the backend worker calls `worker-panic-on-enroll` on enroll jobs).
#[cfg(debug_assertions)]
#[allow(
    clippy::disallowed_methods,
    reason = "a debug-build failpoint, armed by the tests through the environment"
)]
pub fn failpoint(name: &str) {
    if std::env::var("FLEET_EDGE_FAILPOINT").is_ok_and(|v| v == name) {
        #[allow(clippy::panic)]
        {
            panic!("failpoint {name}");
        }
    }
}
