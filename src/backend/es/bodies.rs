//! The exact request lines and bodies of es-contract.md §2 (Q1–Q8a of §2.5.4, bulk action lines
//! of §2.3, the `_mget` body of §2.4, API key bodies of §2.2), as pure functions. JSON objects
//! come out with sorted keys, as Go marshals maps (`serde_json::Map` is ordered by key here);
//! the few lines Go writes by hand (bulk action lines, msearch headers, the `_mget` prefix, the
//! create-API-key struct) are written by hand in the same order. Unit tests pin the bytes.

use serde_json::{json, Value};

/// `.fleet-agents`
pub const AGENTS: &str = ".fleet-agents";
/// `.fleet-actions`
pub const ACTIONS: &str = ".fleet-actions";
/// `.fleet-actions-results` (a data stream)
pub const RESULTS: &str = ".fleet-actions-results";
/// `.fleet-policies`
pub const POLICIES: &str = ".fleet-policies";
/// `.fleet-enrollment-api-keys`
pub const ENROLLMENT_KEYS: &str = ".fleet-enrollment-api-keys";
/// Page size of the index monitors (`fetch_size`, §6.1).
pub const FETCH_SIZE: usize = 1000;

/// A JSON string literal.
fn q(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

/// Percent-encodes a path segment or query value (unreserved characters kept).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A bulk operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `create` (fails with 409 when the id exists)
    Create,
    /// `update` (partial document)
    Update,
    /// `delete`
    Delete,
}

impl Op {
    /// The name in the action line and in response items.
    pub fn name(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Update => "update",
            Op::Delete => "delete",
        }
    }
}

/// `{"<op>":{"_id":"<id>",["retry_on_conflict":<n>,]"_index":"<index>"}}`
pub fn bulk_action(op: Op, id: &str, retry_on_conflict: Option<u32>, index: &str) -> String {
    let retry = retry_on_conflict
        .map(|n| format!("\"retry_on_conflict\":{n},"))
        .unwrap_or_default();
    format!(
        "{{\"{}\":{{\"_id\":{},{retry}\"_index\":{}}}}}",
        op.name(),
        q(id),
        q(index)
    )
}

/// `{"docs": [{"_index":"<index>","_id":"<id>"}]}`
pub fn mget(index: &str, id: &str) -> String {
    format!(
        "{{\"docs\": [{{\"_index\":{},\"_id\":{}}}]}}",
        q(index),
        q(id)
    )
}

/// The msearch header of one search (§2.5.1, §2.5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Header {
    /// `{"index": "<index>"}`
    Plain,
    /// `{"index": "<index>", "ignore_unavailable": true}` (latest policies)
    IgnoreUnavailable,
    /// `{"index": "<index>", "wait_for_checkpoints": [<n>]}` (pending actions)
    WaitFor(i64),
}

/// One `<header>\n<body>\n` msearch pair.
pub fn msearch(index: &str, header: Header, body: &Value) -> String {
    let head = match header {
        Header::Plain => format!("{{\"index\": {}}}", q(index)),
        Header::IgnoreUnavailable => {
            format!("{{\"index\": {}, \"ignore_unavailable\": true}}", q(index))
        }
        Header::WaitFor(n) => format!(
            "{{\"index\": {}, \"wait_for_checkpoints\": [{n}]}}",
            q(index)
        ),
    };
    format!("{head}\n{body}\n")
}

/// Q2: the `_seq_no` of the action document with this `_id` (ack token).
pub fn q_action_seq_no(doc_id: &str) -> Value {
    json!({"_source": ["_seq_no"], "query": {"bool": {"filter": [{"term": {"_id": doc_id}}]}}, "seq_no_primary_term": true})
}

/// Q3: an action by `action_id`.
pub fn q_action(action_id: &str) -> Value {
    json!({"_source": {"excludes": ["agents"]}, "query": {"bool": {"filter": [{"term": {"action_id": action_id}}]}}})
}

/// Q4: pending actions of an agent between `after` (exclusive) and `checkpoint`.
pub fn q_pending(agent_id: &str, after: i64, checkpoint: i64, now: &str, size: usize) -> Value {
    json!({
        "_source": {"excludes": ["agents"]},
        "query": {"bool": {"filter": [
            {"range": {"_seq_no": {"gt": after}}},
            {"range": {"_seq_no": {"lte": checkpoint}}},
            {"range": {"expiration": {"gt": now}}},
            {"terms": {"agents": [agent_id]}}
        ]}},
        "seq_no_primary_term": true,
        "size": size,
        "sort": ["_seq_no"]
    })
}

/// Q5: the active enrollment key record of an API key id.
pub fn q_enrollment_key(api_key_id: &str) -> Value {
    json!({"query": {"bool": {"filter": [{"term": {"api_key_id": api_key_id}}, {"term": {"active": true}}]}}})
}

/// Q5 by policy: the active enrollment keys of a policy (fleet-protocol.md §6.5).
pub fn q_policy_enrollment_key(policy_id: &str) -> Value {
    json!({"query": {"bool": {"filter": [{"term": {"policy_id": policy_id}}, {"term": {"active": true}}]}}})
}

/// The agent enrolled with an `enrollment_id` (§2.3).
pub fn q_agent_by_enrollment_id(enrollment_id: &str) -> Value {
    json!({"query": {"bool": {"filter": [{"term": {"enrollment_id": enrollment_id}}]}}, "size": 1})
}

/// Q1 by access key: the agent whose access API key has this id.
pub fn q_agent_by_access_key(api_key_id: &str) -> Value {
    json!({"query": {"bool": {"filter": [{"term": {"access_api_key_id": api_key_id}}]}}, "version": true})
}

/// `.fleet-artifacts`, written by Kibana for Elastic Defend.
pub const ARTIFACTS: &str = ".fleet-artifacts";

/// Q9: an artifact by decoded SHA-256 and identifier (first hit).
pub fn q_artifact(identifier: &str, decoded_sha256: &str) -> Value {
    json!({"query": {"bool": {"must": [
        {"term": {"decoded_sha256": decoded_sha256}},
        {"term": {"identifier": identifier}}
    ]}}})
}

/// Q6: the newest revision of every policy.
pub fn q_latest_policies() -> Value {
    json!({
        "aggs": {"policy_id": {
            "aggs": {"revision_idx": {"top_hits": {"size": 1, "sort": [{"revision_idx": "desc"}]}}},
            "terms": {"field": "policy_id", "size": 10000}
        }},
        "size": 0
    })
}

/// Q8 (policies, `now` = None) and Q8a (actions): monitor fetch of `(after, upto]`.
pub fn q_monitor(after: i64, upto: i64, now: Option<&str>) -> Value {
    let mut filter = vec![
        json!({"range": {"_seq_no": {"gt": after}}}),
        json!({"range": {"_seq_no": {"lte": upto}}}),
    ];
    if let Some(now) = now {
        filter.push(json!({"range": {"expiration": {"gt": now}}}));
    }
    json!({"query": {"bool": {"filter": filter}}, "seq_no_primary_term": true, "size": FETCH_SIZE, "sort": ["_seq_no"]})
}

/// `GET /<index>/_fleet/global_checkpoints?...` long-poll path (query keys sorted, as Go's
/// `url.Values.Encode`; timeout in integer milliseconds).
pub fn checkpoints_poll(index: &str, checkpoint: i64, timeout_ms: u128) -> String {
    format!(
        "/{index}/_fleet/global_checkpoints?checkpoints={checkpoint}&timeout={timeout_ms}ms&wait_for_advance=true&wait_for_index=true"
    )
}

/// `PUT /_security/api_key?refresh=false` body: Go's struct order `name`, `role_descriptors`,
/// `metadata` (maps inside sorted).
pub fn create_api_key(name: &str, role_descriptors: &Value, metadata: &Value) -> String {
    format!(
        "{{\"name\":{},\"role_descriptors\":{},\"metadata\":{}}}",
        q(name),
        role_descriptors,
        metadata
    )
}

/// `DELETE /_security/api_key` body.
pub fn invalidate_api_keys(ids: &[String]) -> Value {
    json!({"ids": ids, "owner": true})
}

/// `POST /_security/api_key/_bulk_update` body.
pub fn bulk_update_api_key(id: &str, role_descriptors: &Value) -> Value {
    json!({"ids": [id], "role_descriptors": role_descriptors})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_lines_are_written_as_go_writes_them() {
        assert_eq!(
            bulk_action(Op::Create, "a1", None, AGENTS),
            r#"{"create":{"_id":"a1","_index":".fleet-agents"}}"#
        );
        assert_eq!(
            bulk_action(Op::Update, "a\"1", Some(3), AGENTS),
            r#"{"update":{"_id":"a\"1","retry_on_conflict":3,"_index":".fleet-agents"}}"#
        );
        assert_eq!(
            mget(AGENTS, "a1"),
            r#"{"docs": [{"_index":".fleet-agents","_id":"a1"}]}"#
        );
    }

    #[test]
    fn search_bodies_match_the_contract_byte_for_byte() {
        assert_eq!(
            q_action_seq_no("tok").to_string(),
            r#"{"_source":["_seq_no"],"query":{"bool":{"filter":[{"term":{"_id":"tok"}}]}},"seq_no_primary_term":true}"#
        );
        assert_eq!(
            q_action("act").to_string(),
            r#"{"_source":{"excludes":["agents"]},"query":{"bool":{"filter":[{"term":{"action_id":"act"}}]}}}"#
        );
        assert_eq!(
            q_pending("ag", 4, 9, "2026-01-01T00:00:00Z", 100).to_string(),
            r#"{"_source":{"excludes":["agents"]},"query":{"bool":{"filter":[{"range":{"_seq_no":{"gt":4}}},{"range":{"_seq_no":{"lte":9}}},{"range":{"expiration":{"gt":"2026-01-01T00:00:00Z"}}},{"terms":{"agents":["ag"]}}]}},"seq_no_primary_term":true,"size":100,"sort":["_seq_no"]}"#
        );
        assert_eq!(
            q_enrollment_key("k").to_string(),
            r#"{"query":{"bool":{"filter":[{"term":{"api_key_id":"k"}},{"term":{"active":true}}]}}}"#
        );
        assert_eq!(
            q_latest_policies().to_string(),
            r#"{"aggs":{"policy_id":{"aggs":{"revision_idx":{"top_hits":{"size":1,"sort":[{"revision_idx":"desc"}]}}},"terms":{"field":"policy_id","size":10000}}},"size":0}"#
        );
        assert_eq!(
            q_monitor(-1, 5, None).to_string(),
            r#"{"query":{"bool":{"filter":[{"range":{"_seq_no":{"gt":-1}}},{"range":{"_seq_no":{"lte":5}}}]}},"seq_no_primary_term":true,"size":1000,"sort":["_seq_no"]}"#
        );
        assert_eq!(
            q_monitor(2, 5, Some("2026-01-01T00:00:00Z")).to_string(),
            r#"{"query":{"bool":{"filter":[{"range":{"_seq_no":{"gt":2}}},{"range":{"_seq_no":{"lte":5}}},{"range":{"expiration":{"gt":"2026-01-01T00:00:00Z"}}}]}},"seq_no_primary_term":true,"size":1000,"sort":["_seq_no"]}"#
        );
    }

    #[test]
    fn headers_paths_and_key_bodies() {
        let body = json!({"size": 0});
        assert_eq!(
            msearch(POLICIES, Header::IgnoreUnavailable, &body),
            "{\"index\": \".fleet-policies\", \"ignore_unavailable\": true}\n{\"size\":0}\n"
        );
        assert_eq!(
            msearch(ACTIONS, Header::WaitFor(7), &body),
            "{\"index\": \".fleet-actions\", \"wait_for_checkpoints\": [7]}\n{\"size\":0}\n"
        );
        assert_eq!(
            msearch(ENROLLMENT_KEYS, Header::Plain, &body),
            "{\"index\": \".fleet-enrollment-api-keys\"}\n{\"size\":0}\n"
        );
        assert_eq!(
            checkpoints_poll(ACTIONS, -1, 240_000),
            "/.fleet-actions/_fleet/global_checkpoints?checkpoints=-1&timeout=240000ms&wait_for_advance=true&wait_for_index=true"
        );
        assert_eq!(
            create_api_key(
                "a1",
                &json!({"r": {"cluster": []}}),
                &json!({"type": "access", "agent_id": "a1"})
            ),
            r#"{"name":"a1","role_descriptors":{"r":{"cluster":[]}},"metadata":{"agent_id":"a1","type":"access"}}"#
        );
        assert_eq!(
            invalidate_api_keys(&["x".into()]).to_string(),
            r#"{"ids":["x"],"owner":true}"#
        );
        assert_eq!(encode("a b/c:d"), "a%20b%2Fc%3Ad");
    }
}
