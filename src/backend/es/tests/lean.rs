//! Reading an agent for a request leaves out `last_checkin_message` (issue 15 §3): an agent may
//! make it megabytes long, and every ack or checkin of that agent would otherwise fetch and
//! parse it again. The full read still has it.

use serde_json::{json, Map};

use super::pair;
use crate::backend::Store;
use crate::model::Agent;

#[test]
fn requests_read_the_agent_without_its_checkin_message() {
    let (_es, store) = pair();
    store
        .create_agent(&Agent {
            id: "big".into(),
            active: true,
            access_api_key_id: "key-1".into(),
            agent: Some(serde_json::from_value(json!({"id": "big", "version": "9.2.1"})).unwrap()),
            ..Agent::default()
        })
        .unwrap();
    // Large enough to matter, small enough for a debug build under qemu (2 MiB took 110 s there).
    let message = "m".repeat(256 * 1024);
    let mut fields = Map::new();
    fields.insert("last_checkin_message".into(), json!(message));
    fields.insert("last_checkin_status".into(), json!("online"));
    store.update_agent("big", &fields).unwrap();

    let lean = store.agent_for_request("big").unwrap().unwrap();
    assert_eq!(lean.last_checkin_message, "");
    assert_eq!(
        (
            lean.id.as_str(),
            lean.access_api_key_id.as_str(),
            lean.active
        ),
        ("big", "key-1", true)
    );
    assert_eq!(lean.last_checkin_status, "online");
    assert!(lean.agent.is_some());
    let full = store.agent("big").unwrap().unwrap();
    assert_eq!(full.last_checkin_message.len(), message.len());
}
