//! The checkin update of an OpAMP collector that reported an effective configuration: Fleet
//! Server's script S2 (`checkinWithEffectiveConfig.painless`, es-contract.md §3.7), so the stored
//! configuration is replaced whole instead of merged (a removed pipeline must disappear). Params
//! in the form its `encodeParams` sends.

use serde_json::{json, Map, Value};

/// `internal/pkg/checkin/checkinWithEffectiveConfig.painless`, verbatim.
pub const CHECKIN_WITH_EFFECTIVE_CONFIG: &str = r#"ctx._source.last_checkin = params.TS;
ctx._source.updated_at = params.Now;
ctx._source.last_checkin_status = params.Status;
ctx._source.last_checkin_message = params.Message;
ctx._source.unhealthy_reason = params.UnhealthyReason;
ctx._source.sequence_num = params.OpAMPSequenceNum;
if (params.PolicyID != "") {
  ctx._source.agent_policy_id = params.PolicyID;
  ctx._source.policy_revision_idx = params.RevisionIDX;
}
if (params.Ver != "") {
  ctx._source.agent.version = params.Ver;
}
if (params.Meta != null) {
  ctx._source.local_metadata = params.Meta;
}
if (params.Components != null) {
  ctx._source.components = params.Components;
}
if (params.OpAMPHealth != null) {
  ctx._source.health = params.OpAMPHealth;
}
if (params.OpAMPCapabilities != null) {
  ctx._source.capabilities = params.OpAMPCapabilities;
}
ctx._source.effective_config = params.OpAMPEffectiveConfig;
if (params.SeqNoSet) {
  ctx._source.action_seq_no = params.SeqNo;
}
"#;

/// The assignment fleet-edge appends to S2 for a collector's remote-configuration status.
const REMOTE_CONFIG_STATUS: &str = r#"if (params.OpAMPRemoteConfigStatus != null) {
  ctx._source.remote_config_status = params.OpAMPRemoteConfigStatus;
}
"#;

/// The update body for one checkin-state entry: S2 when it carries `effective_config` (and
/// nothing S2 cannot write), the partial document otherwise.
pub fn update_body(fields: &Map<String, Value>) -> Value {
    if !scripted(fields) {
        return json!({ "doc": fields });
    }
    scripted_body(fields)
}

/// Whether `fields` are written by script S2 (an OpAMP collector's state with its effective
/// configuration), not as a partial document.
pub fn scripted(fields: &Map<String, Value>) -> bool {
    const S2_FIELDS: &[&str] = &[
        "last_checkin",
        "updated_at",
        "last_checkin_status",
        "last_checkin_message",
        "unhealthy_reason",
        "sequence_num",
        "health",
        "capabilities",
        "effective_config",
        "remote_config_status",
    ];
    fields.contains_key("effective_config")
        && fields.keys().all(|k| S2_FIELDS.contains(&k.as_str()))
}

/// Script S2 with `fields` as its parameters.
fn scripted_body(fields: &Map<String, Value>) -> Value {
    let get = |k: &str| fields.get(k).cloned().unwrap_or(Value::Null);
    // fleet-edge's remote configuration (beyond Fleet Server) adds one assignment to S2; traffic
    // without it sends Fleet Server's script verbatim.
    let source = if fields.contains_key("remote_config_status") {
        format!("{CHECKIN_WITH_EFFECTIVE_CONFIG}{REMOTE_CONFIG_STATUS}")
    } else {
        CHECKIN_WITH_EFFECTIVE_CONFIG.to_owned()
    };
    json!({"script": {
        "lang": "painless",
        "params": {
            "Now": get("updated_at"),
            "TS": get("last_checkin"),
            "Status": get("last_checkin_status"),
            "Message": get("last_checkin_message"),
            "UnhealthyReason": get("unhealthy_reason"),
            "PolicyID": "",
            "RevisionIDX": 0,
            "Ver": "",
            "Meta": null,
            "Components": null,
            "SeqNoSet": false,
            "SeqNo": null,
            "OpAMPSequenceNum": fields.get("sequence_num").cloned().unwrap_or(json!(0)),
            "OpAMPHealth": get("health"),
            "OpAMPCapabilities": get("capabilities"),
            "OpAMPEffectiveConfig": get("effective_config"),
            "OpAMPRemoteConfigStatus": get("remote_config_status"),
        },
        "source": source,
    }})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_config_goes_through_s2_and_the_rest_as_a_doc() {
        let mut fields = Map::new();
        fields.insert("last_checkin_status".into(), json!("online"));
        fields.insert("sequence_num".into(), json!(4));
        assert_eq!(update_body(&fields), json!({ "doc": fields }));
        fields.insert("effective_config".into(), json!({"a": 1}));
        let body = update_body(&fields);
        assert_eq!(
            body["script"]["params"]["OpAMPEffectiveConfig"],
            json!({"a": 1})
        );
        assert_eq!(body["script"]["params"]["OpAMPSequenceNum"], json!(4));
        assert_eq!(body["script"]["params"]["OpAMPHealth"], Value::Null);
        assert_eq!(body["script"]["source"], CHECKIN_WITH_EFFECTIVE_CONFIG);
        fields.insert("audit_unenrolled_reason".into(), Value::Null);
        assert!(update_body(&fields).get("doc").is_some());
    }
}
