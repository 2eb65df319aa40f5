//! `POST /api/fleet/agents/{id}/audit/unenroll` (fleet-protocol.md §8): an agent reports it was
//! uninstalled, found itself orphaned, lost its key or migrated. Agent-binding auth (the agent
//! must still be active); the reason and time are recorded; a later checkin removes them again.

use std::time::SystemTime;

// Moved to `backend::interface`; this path stays for the branches developed alongside the move.
// To be removed.
use crate::backend::interface::AuditInput;

use serde_json::{json, Map};

use super::authenticate_agent;
use crate::backend::interface::AuditRequest;
use crate::backend::OpError;
use crate::backend::Store;
use crate::model::time::rfc3339_seconds;

/// Records the audit; `Ok(())` is the empty 200.
pub fn audit_unenroll(
    store: &dyn Store,
    input: &AuditInput,
    now: SystemTime,
) -> Result<(), OpError> {
    let agent = authenticate_agent(store, &input.key, &input.agent_id)?;
    let AuditRequest { reason, timestamp } = input.body.clone()?;
    if agent.audit_unenrolled_reason == "orphaned" {
        return Err(OpError::AuditConflict);
    }
    let mut fields = Map::new();
    fields.insert("updated_at".into(), json!(rfc3339_seconds(now)));
    // Go stores the decoded time.Time, which marshals as RFC3339Nano in the agent's offset.
    fields.insert(
        "audit_unenrolled_time".into(),
        json!(timestamp.rfc3339_nano()),
    );
    fields.insert("audit_unenrolled_reason".into(), json!(reason));
    store
        .update_agent(&agent.id, &fields)
        .map_err(OpError::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::MemoryStore;
    use crate::backend::ApiKey;

    fn setup() -> (MemoryStore, ApiKey) {
        super::super::testkit::store_with_agent("a")
    }

    fn input(key: &ApiKey, body: serde_json::Value) -> AuditInput {
        AuditInput {
            key: key.clone(),
            agent_id: "a".into(),
            body: crate::api::audit::parse(&serde_json::to_vec(&body).unwrap()),
        }
    }

    #[test]
    fn records_reason_and_time_and_refuses_after_orphaned() {
        let (store, key) = setup();
        audit_unenroll(
            &store,
            &input(
                &key,
                json!({"reason": "orphaned", "timestamp": "2026-05-01T10:00:00Z"}),
            ),
            SystemTime::now(),
        )
        .unwrap();
        let agent = store.agent("a").unwrap().unwrap();
        assert_eq!(agent.audit_unenrolled_reason, "orphaned");
        assert_eq!(agent.other["audit_unenrolled_time"], "2026-05-01T10:00:00Z");
        assert_eq!(
            audit_unenroll(
                &store,
                &input(
                    &key,
                    json!({"reason": "uninstall", "timestamp": "2026-05-01T10:00:00Z"})
                ),
                SystemTime::now()
            ),
            Err(OpError::AuditConflict)
        );
    }

    #[test]
    fn bad_reasons_and_bodies_are_400() {
        let (store, key) = setup();
        for body in [
            json!({"reason": "bored", "timestamp": "2026-05-01T10:00:00Z"}),
            json!({"reason": "uninstall", "timestamp": "yesterday"}),
        ] {
            assert!(matches!(
                audit_unenroll(&store, &input(&key, body), SystemTime::now()),
                Err(OpError::Invalid(_))
            ));
        }
    }
}
