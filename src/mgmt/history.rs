//! The agents-by-status history of the console's overview chart: a sample of the status counts
//! per 5-minute slot, 24 hours of them ([`crate::model::status_history`]), taken by a periodic
//! chore of the loop (embedded mode; [`CHECK_EVERY`]) and once at start, kept in the data dir's
//! `status-history.json` so a restart keeps them, and served at
//! `GET /api/fleet/fleet_edge/status_history` (fleet-edge's own prefix: no Kibana path).

use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use super::admin::Admin;
use crate::model::status_history::{INTERVAL_SECS, WINDOW_SECS};
use crate::model::time::rfc3339_seconds;
use crate::model::AgentStatus;

/// How often the chore looks whether a sample is due (one is, per 5-minute slot).
pub const CHECK_EVERY: Duration = Duration::from_secs(60);

/// The file in the data dir.
pub const FILE: &str = "status-history.json";

fn unix(now: SystemTime) -> u64 {
    now.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Takes a sample at `now` if one is due and keeps it; whether one was taken.
pub fn sample(admin: &dyn Admin, now: SystemTime) -> Result<bool, String> {
    let Some(history) = admin.status_history() else {
        return Ok(false);
    };
    let secs = unix(now);
    if !history.lock().unwrap_or_else(|p| p.into_inner()).due(secs) {
        return Ok(false);
    }
    let counts = super::listing::status_counts(admin, now)?;
    let mut history = history.lock().unwrap_or_else(|p| p.into_inner());
    if !history.record(secs, &counts) {
        return Ok(false);
    }
    admin.save_status_history(&history)?;
    Ok(true)
}

/// `GET /api/fleet/fleet_edge/status_history`: `{interval_seconds, window_seconds, statuses,
/// samples: [{timestamp, counts}]}`, `counts` in the order of `statuses`, oldest sample first;
/// no samples where the server keeps none.
pub fn answer(admin: &dyn Admin, now: SystemTime) -> Value {
    let samples: Vec<Value> = admin.status_history().map_or_else(Vec::new, |history| {
        history
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .window(unix(now))
            .map(|s| {
                let at = SystemTime::UNIX_EPOCH + Duration::from_secs(s.t);
                json!({"timestamp": rfc3339_seconds(at), "counts": s.c})
            })
            .collect()
    });
    json!({
        "interval_seconds": INTERVAL_SECS,
        "window_seconds": WINDOW_SECS,
        "statuses": AgentStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "samples": samples,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Arc;

    use super::*;
    use crate::backend::local::LocalStore;
    use crate::backend::Store;
    use crate::embedded::EmbeddedAdmin;
    use crate::model::time::rfc3339_seconds;
    use crate::model::Agent;
    use crate::tls::test_support::TempDir;

    /// A driven clock (no sleeps): a sample per 5-minute slot however often the chore looks,
    /// with the counts of that moment, kept in the data dir, read back by the next start.
    #[test]
    fn samples_per_slot_kept_across_a_restart() {
        let dir = TempDir::new("status-history");
        let store = Arc::new(LocalStore::open(dir.path()).unwrap());
        let admin = || {
            EmbeddedAdmin::new(
                Arc::clone(&store),
                dir.path().join("policies"),
                Default::default(),
                crate::model::agent_status::OFFLINE_AFTER,
            )
        };
        let first = admin();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(6_000_000 * 300);
        let agent = |id: &str, secs: u64| Agent {
            id: id.into(),
            active: true,
            policy_id: "p".into(),
            policy_revision_idx: 1,
            enrolled_at: rfc3339_seconds(t0),
            last_checkin: rfc3339_seconds(t0 + Duration::from_secs(secs)),
            ..Agent::default()
        };
        store.create_agent(&agent("a1", 0)).unwrap();
        assert!(sample(&first, t0).unwrap());
        store.create_agent(&agent("a2", 60)).unwrap();
        for secs in [60, 120, 299] {
            assert!(
                !sample(&first, t0 + Duration::from_secs(secs)).unwrap(),
                "{secs}"
            );
        }
        let t1 = t0 + Duration::from_secs(300);
        assert!(sample(&first, t1).unwrap());
        let served = answer(&first, t1);
        assert_eq!(served["interval_seconds"], 300);
        assert_eq!(served["statuses"][0], "online");
        assert_eq!(served["samples"].as_array().unwrap().len(), 2, "{served}");
        assert_eq!(served["samples"][0]["timestamp"], rfc3339_seconds(t0));
        assert_eq!(served["samples"][0]["counts"][0], 1, "one online at t0");
        assert_eq!(served["samples"][1]["counts"][0], 2, "two online at t1");

        let file = dir.path().join(FILE);
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // The next start reads them; its first sample waits for the next slot.
        let second = admin();
        assert_eq!(answer(&second, t1), served);
        assert!(!sample(&second, t1 + Duration::from_secs(10)).unwrap());
        // A day later the old samples are out of the window.
        let later = t1 + Duration::from_secs(24 * 3600);
        assert!(sample(&second, later).unwrap());
        assert_eq!(
            answer(&second, later)["samples"].as_array().unwrap().len(),
            1
        );
    }
}
