//! Fuzz target `policy_prepare`: arbitrary bytes as a policy file's content, decoded as the
//! embedded mode's policy loader decodes a file (`serde_json` to a value), then prepared for
//! delivery as a revision (`transform::prepared_policy::PreparedPolicy::prepare_with`, with the secrets it
//! references resolved, with and without per-agent output keys), rendered as the POLICY_CHANGE
//! action for an agent with and without keys, and read for Fleet Server overrides
//! (`bootstrap::overrides::read`). No input may panic.
//!
//! Input layout: byte 0 picks the revision number and whether output keys are minted; the rest
//! is the file.
#![no_main]

use std::collections::{BTreeMap, HashMap};

use fleet_edge::bootstrap::overrides;
use fleet_edge::model::PolicyDoc;
use fleet_edge::transform::prepared_policy::PreparedPolicy;
use fleet_edge::transform::secrets::referenced_ids;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let [ctl, file @ ..] = data else {
        return;
    };
    let Ok(value) = serde_json::from_slice::<Value>(file) else {
        return;
    };
    let doc = PolicyDoc {
        timestamp: "2026-08-21T18:59:00.000Z".into(),
        policy_id: "fuzz-policy".into(),
        revision_idx: i64::from(ctl >> 1),
        data: value,
        ..PolicyDoc::default()
    };
    let secrets: HashMap<String, String> = referenced_ids(&doc.data)
        .into_iter()
        .map(|id| {
            let value = format!("secret-of-{id}");
            (id, value)
        })
        .collect();
    let _ = overrides::read(&doc);
    match PreparedPolicy::prepare_with(&doc, &secrets, ctl & 1 == 1) {
        Ok(prepared) => {
            let _ = prepared.action_id();
            let mut out = Vec::new();
            prepared.render_action("agent-1", &BTreeMap::new(), &mut out);
            let keys: BTreeMap<String, String> = doc
                .data
                .get("outputs")
                .and_then(Value::as_object)
                .map(|o| {
                    o.keys()
                        .map(|name| (name.clone(), "kid:ksecret".to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            let _ = prepared.keys_current(&BTreeMap::new());
            out.clear();
            prepared.render_action("agent-1", &keys, &mut out);
            assert!(
                serde_json::from_slice::<Value>(&out).is_ok(),
                "a rendered POLICY_CHANGE action must be JSON"
            );
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
