//! The update bodies Fleet Server sends as painless scripts where a partial document cannot say
//! what it means (es-contract.md §3.7): S1, the checkin flush of an agent that was
//! audit-unenrolled (members are removed, which a `doc` merge cannot do), and S3, the
//! POLICY_CHANGE ack (conditional on the agent's policy, and a removal). Params carry Fleet
//! Server's names and shapes; they are built from the same partial document the other stores
//! merge (`memory::apply_checkin`, `memory::apply_policy_ack` are the reference effects).

use serde_json::{json, Map, Value};

use crate::backend::CheckinWrite;

/// S1, written from its effect in es-contract.md §3.7 with the params Fleet Server passes (same
/// names, same JSON shapes, "Params notes" there): the checkin members set as the partial
/// document would set them, then the audit members removed.
pub const S1_CHECKIN_CLEARING_AUDIT: &str = "\
ctx._source.last_checkin = params.TS; \
ctx._source.updated_at = params.Now; \
ctx._source.last_checkin_status = params.Status; \
ctx._source.last_checkin_message = params.Message; \
ctx._source.unhealthy_reason = params.UnhealthyReason; \
if (params.PolicyID != \"\") { ctx._source.agent_policy_id = params.PolicyID; ctx._source.policy_revision_idx = params.RevisionIDX; } \
if (params.Ver != \"\") { ctx._source.agent.version = params.Ver; } \
if (params.Meta != null) { ctx._source.local_metadata = params.Meta; } \
if (params.Components != null) { ctx._source.components = params.Components; } \
if (params.SeqNoSet) { ctx._source.action_seq_no = params.SeqNo; } \
ctx._source.remove('audit_unenrolled_reason'); \
ctx._source.remove('audit_unenrolled_time'); \
ctx._source.remove('unenrolled_at');";

/// S3, written from its effect in es-contract.md §3.7 and fleet-protocol.md §4.3 step 2, with
/// Fleet Server's params `id`, `rev`, `ts`: only while the agent is still on the acked policy.
pub const S3_POLICY_ACK: &str = "\
if (ctx._source.policy_id == params.id) { \
ctx._source.remove('default_api_key_history'); \
ctx._source.policy_revision_idx = params.rev; \
ctx._source.updated_at = params.ts; \
} else { ctx.op = \"noop\"; }";

/// The checkin-state members S1 writes from its params.
const S1_MEMBERS: [&str; 11] = [
    "updated_at",
    "last_checkin",
    "last_checkin_status",
    "last_checkin_message",
    "unhealthy_reason",
    "agent_policy_id",
    "policy_revision_idx",
    "agent",
    "local_metadata",
    "components",
    "action_seq_no",
];

/// The `update` bodies of one checkin-state write, in order: `{"doc":..}` for a plain write; for
/// one clearing the audit members S1 with the params Fleet Server's `encodeParams` builds, then
/// `{"doc":..}` with any member S1 does not set (the upgrade-details members this server writes
/// with the checkin state), if there is one.
pub fn checkin_updates(write: &CheckinWrite) -> Vec<Value> {
    if !write.clear_audit {
        return vec![json!({ "doc": write.fields })];
    }
    let f = &write.fields;
    let text = |k: &str| f.get(k).cloned().unwrap_or_else(|| json!(""));
    let or_null = |k: &str| f.get(k).cloned().unwrap_or(Value::Null);
    let version = f
        .get("agent")
        .and_then(|a| a.get("version"))
        .cloned()
        .unwrap_or_else(|| json!(""));
    let params = json!({
        "Now": or_null("updated_at"),
        "TS": or_null("last_checkin"),
        "Status": text("last_checkin_status"),
        "Message": text("last_checkin_message"),
        "UnhealthyReason": or_null("unhealthy_reason"),
        "PolicyID": text("agent_policy_id"),
        "RevisionIDX": f.get("policy_revision_idx").cloned().unwrap_or_else(|| json!(0)),
        "Ver": version,
        "Meta": or_null("local_metadata"),
        "Components": or_null("components"),
        "SeqNoSet": f.contains_key("action_seq_no"),
        "SeqNo": or_null("action_seq_no"),
    });
    let mut bodies = vec![json!({"script": {
        "lang": "painless",
        "params": params,
        "source": S1_CHECKIN_CLEARING_AUDIT,
    }})];
    let rest: Map<String, Value> = f
        .iter()
        .filter(|(k, _)| !S1_MEMBERS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !rest.is_empty() {
        bodies.push(json!({ "doc": rest }));
    }
    bodies
}

/// The S3 `update` body for an acked revision of `policy_id`.
pub fn policy_ack(policy_id: &str, revision: i64, updated_at: &str) -> Value {
    json!({"script": {
        "lang": "painless",
        "source": S3_POLICY_ACK,
        "params": {"id": policy_id, "rev": revision, "ts": updated_at},
    }})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn a_plain_write_is_a_partial_document() {
        let write = CheckinWrite::fields(fields(json!({"last_checkin": "t"})));
        assert_eq!(
            checkin_updates(&write),
            vec![json!({"doc": {"last_checkin": "t"}})]
        );
    }

    #[test]
    fn clearing_the_audit_members_is_s1_with_fleet_servers_params() {
        let write = CheckinWrite {
            fields: fields(
                json!({"updated_at": "n", "last_checkin": "t", "last_checkin_status": "online",
                "last_checkin_message": "m", "unhealthy_reason": null, "action_seq_no": [4],
                "agent": {"version": "9.2.2"}, "upgrade_details": null}),
            ),
            clear_audit: true,
        };
        let bodies = checkin_updates(&write);
        assert_eq!(bodies.len(), 2);
        assert_eq!(
            bodies[0]["script"]["params"],
            json!({"Now": "n", "TS": "t", "Status": "online", "Message": "m", "UnhealthyReason": null,
                "PolicyID": "", "RevisionIDX": 0, "Ver": "9.2.2", "Meta": null, "Components": null,
                "SeqNoSet": true, "SeqNo": [4]})
        );
        assert_eq!(bodies[0]["script"]["source"], S1_CHECKIN_CLEARING_AUDIT);
        assert_eq!(bodies[1], json!({"doc": {"upgrade_details": null}}));
    }
}
