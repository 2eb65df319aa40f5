//! The listing index agrees with decoding every document: the same answers for every filter,
//! kuery field, sort and page the API documents, before and after each kind of agent write, and
//! a write shows in the very next listing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{json, Map, Value};

use super::super::admin::{Admin, AdminRequest};
use super::super::query::{Params, KUERY_FIELDS};
use super::super::Route;
use super::{inactivity_timeout, DEFAULT_INACTIVITY_TIMEOUT};
use crate::backend::local::LocalStore;
use crate::backend::{ApiKey, CheckinWrite, PolicyAck, Store, StoreError};
use crate::embedded::EmbeddedAdmin;
use crate::model::time::rfc3339_seconds;
use crate::model::{Action, ActionResult, Agent, EnrollmentKey, PolicyDoc};
use crate::tls::test_support::TempDir;

/// The same store without the index: every listing decodes every document.
struct Docs<'a>(&'a EmbeddedAdmin);

impl Admin for Docs<'_> {
    fn store(&self) -> &dyn Store {
        self.0.store()
    }
    fn list_agents(&self) -> Result<Vec<Agent>, StoreError> {
        self.0.list_agents()
    }
    fn list_enrollment_keys(&self) -> Result<Vec<EnrollmentKey>, StoreError> {
        self.0.list_enrollment_keys()
    }
    fn add_enrollment_key(&self, policy_id: &str, name: &str) -> Result<ApiKey, StoreError> {
        self.0.add_enrollment_key(policy_id, name)
    }
    fn revoke_enrollment_key(&self, api_key_id: &str) -> Result<(), StoreError> {
        self.0.revoke_enrollment_key(api_key_id)
    }
    fn add_action(&self, action: Action) -> Result<Action, StoreError> {
        self.0.add_action(action)
    }
    fn list_actions(&self) -> Result<Vec<Action>, StoreError> {
        self.0.list_actions()
    }
    fn action_results(&self, action_id: &str) -> Result<Vec<ActionResult>, StoreError> {
        self.0.action_results(action_id)
    }
    fn apply_policy(&self, id: &str, data: Value) -> Result<i64, String> {
        self.0.apply_policy(id, data)
    }
    fn delete_policy(&self, id: &str) -> Result<(), String> {
        self.0.delete_policy(id)
    }
}

struct Fleet {
    admin: EmbeddedAdmin,
    store: Arc<LocalStore>,
    now: SystemTime,
    _dir: TempDir,
}

fn at(now: SystemTime, secs_ago: u64) -> String {
    rfc3339_seconds(now - Duration::from_secs(secs_ago))
}

/// Agents in every status, on two policies, with tags, versions, host names and types.
fn fleet() -> Fleet {
    let dir = TempDir::new("listing-index");
    let store = Arc::new(LocalStore::open(dir.path()).unwrap());
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    for (id, rev, timeout) in [("p1", 3, json!(3600)), ("p2", 1, Value::Null)] {
        let mut data = json!({"id": id, "revision": rev});
        if !timeout.is_null() {
            data["inactivity_timeout"] = timeout;
        }
        store
            .add_policy(PolicyDoc {
                policy_id: id.into(),
                revision_idx: rev,
                data,
                ..PolicyDoc::default()
            })
            .unwrap();
    }
    let kinds: [(&str, Value); 13] = [
        (
            "online",
            json!({"last_checkin": at(now, 10), "last_checkin_status": "online"}),
        ),
        (
            "error",
            json!({"last_checkin": at(now, 20), "last_checkin_status": "FAILED"}),
        ),
        (
            "degraded",
            json!({"last_checkin": at(now, 5), "last_checkin_status": "DEGRADED"}),
        ),
        (
            "offline",
            json!({"last_checkin": at(now, 1000), "last_checkin_status": "online"}),
        ),
        (
            "inactive",
            json!({"last_checkin": at(now, 90_000), "last_checkin_status": "online"}),
        ),
        (
            "unenrolled",
            json!({"active": false, "unenrolled_at": at(now, 50)}),
        ),
        (
            "uninstalled",
            json!({"last_checkin": at(now, 10), "audit_unenrolled_reason": "uninstall"}),
        ),
        (
            "orphaned",
            json!({"last_checkin": at(now, 10), "audit_unenrolled_reason": "orphaned"}),
        ),
        (
            "updating",
            json!({"last_checkin": at(now, 10), "policy_revision_idx": 0}),
        ),
        (
            "upgrading",
            json!({"last_checkin": at(now, 10), "upgrade_started_at": at(now, 30),
                             "upgrade_details": {"state": "UPG_DOWNLOADING"}}),
        ),
        (
            "enrolling",
            json!({"last_checkin": Value::Null, "enrolled_at": at(now, 30)}),
        ),
        (
            "unenrolling",
            json!({"last_checkin": at(now, 10), "unenrollment_started_at": at(now, 5)}),
        ),
        (
            "disconnected",
            json!({"last_checkin": at(now, 10), "last_checkin_status": "disconnected"}),
        ),
    ];
    let mut n = 0;
    for (kind, members) in kinds {
        for copy in 0..3 {
            n += 1;
            let policy = if n % 3 == 0 { "p2" } else { "p1" };
            let version = ["9.2.1", "9.1.0", "8.19.4"][n as usize % 3];
            let tags: &[&str] = [&["edge"][..], &["edge", "lab"], &[]][copy % 3];
            let mut doc = json!({
                "active": true, "type": if n % 4 == 0 { "EPHEMERAL" } else { "PERMANENT" },
                "policy_id": policy, "policy_revision_idx": if policy == "p1" { 3 - (n % 2) } else { 1 },
                "enrolled_at": at(now, 100_000 - n * 7),
                "agent": {"id": format!("agent-{n:03}"), "version": version},
                "local_metadata": {"host": {"hostname": format!("{kind}-{copy}.Example.org"), "name": format!("Host {n}")}},
                "tags": tags,
                "action_seq_no": [n as i64 - 5],
            });
            if copy == 2 && kind == "online" {
                doc["local_metadata"] = json!({});
            }
            for (k, v) in members.as_object().unwrap() {
                if v.is_null() {
                    doc.as_object_mut().unwrap().remove(k);
                } else {
                    doc[k] = v.clone();
                }
            }
            let mut agent: Agent = serde_json::from_value(doc).unwrap();
            agent.id = format!("agent-{n:03}");
            store.create_agent(&agent).unwrap();
        }
    }
    let admin = EmbeddedAdmin::new(
        Arc::clone(&store),
        dir.path().join("policies"),
        Default::default(),
        crate::model::agent_status::OFFLINE_AFTER,
    );
    Fleet {
        admin,
        store,
        now,
        _dir: dir,
    }
}

fn request(route: Route, query: &str) -> AdminRequest {
    AdminRequest {
        route,
        body: Value::Null,
        params: Params::parse(Some(query)),
        pending_checkins: Default::default(),
    }
}

fn answer(admin: &dyn Admin, req: &AdminRequest, now: SystemTime) -> (u16, Value) {
    super::super::ops::execute(admin, req, now)
}

/// Every listing query the API documents: each kuery field (exact, prefix, negated, combined),
/// `showInactive`, `policyId`, `search`, each sort field and order, paging, `getStatusSummary`.
fn queries() -> Vec<String> {
    let values: &[(&str, &[&str])] = &[
        (
            "status",
            &[
                "online",
                "error",
                "degraded",
                "offline",
                "updating",
                "enrolling",
                "unenrolling",
                "inactive",
                "unenrolled",
                "uninstalled",
                "orphaned",
            ],
        ),
        ("policy_id", &["p1", "p2", "p*"]),
        ("policy_revision_idx", &["1", "2", "3"]),
        ("tags", &["edge", "lab", "l*"]),
        ("agent.id", &["agent-007", "agent-01*"]),
        ("agent.version", &["9.2.1", "8.*"]),
        (
            "local_metadata.host.hostname",
            &["online-0.Example.org", "deg*"],
        ),
        ("local_metadata.host.name", &["Host 4", "Host 1*"]),
        ("last_checkin_status", &["FAILED", "online", "DEG*"]),
        ("type", &["EPHEMERAL", "PERMANENT"]),
    ];
    assert_eq!(
        values.iter().map(|(f, _)| *f).collect::<Vec<_>>(),
        KUERY_FIELDS,
        "every documented kuery field is exercised"
    );
    let mut kueries = vec![String::new()];
    for (field, vals) in values {
        for (i, v) in vals.iter().enumerate() {
            // Quoted and bare values alike; each negated too.
            kueries.push(if i % 2 == 0 {
                format!("{field}:\"{v}\"").replace("*\"", "\"*")
            } else {
                format!("{field}:{v}")
            });
            kueries.push(format!("not {field}:{v}"));
        }
    }
    kueries.push("policy_id:p1 and not policy_revision_idx:3".into());
    kueries.push("(status:online or status:degraded) and tags:edge".into());
    kueries.push("tags:(edge or lab) and not agent.version:9.2.1".into());
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    let mut out = Vec::new();
    for (i, k) in kueries.iter().enumerate() {
        // The selection (its total, its statuses, its first page), in turn with and without
        // the inactive agents.
        let inactive = i % 2 == 0;
        out.push(format!(
            "kuery={}&showInactive={inactive}&perPage=12&getStatusSummary=true",
            enc(k)
        ));
    }
    for extra in [
        "policyId=p2&showInactive=true",
        "search=EXAMPLE&showInactive=true",
        "search=agent-00&perPage=3&page=2",
        "search=nothing-like-it",
        "perPage=7&page=3&getStatusSummary=true&showInactive=true",
        "perPage=7&page=99",
        "sortField=bogus",
        "sortOrder=sideways",
        "kuery=status%3A&showInactive=true",
        "page=0",
    ] {
        out.push(extra.into());
    }
    for field in super::SORT_FIELDS {
        for order in ["asc", "desc"] {
            out.push(format!(
                "sortField={field}&sortOrder={order}&showInactive=true&perPage=100"
            ));
        }
    }
    out
}

/// Every documented listing and count, through the index and through the documents.
fn assert_agree(f: &Fleet, pending: &[(&str, Value)]) {
    let docs = Docs(&f.admin);
    let pending: std::collections::HashMap<String, Map<String, Value>> = pending
        .iter()
        .map(|(id, v)| (id.to_string(), v.as_object().unwrap().clone()))
        .collect();
    let mut compared = 0;
    for (route, queries) in [
        (Route::ListAgents, queries()),
        (
            Route::AgentStatusCounts,
            vec!["".into(), "policyId=p1".into(), "kuery=tags%3Aedge".into()],
        ),
        (
            Route::AgentTags,
            vec!["".into(), "showInactive=true".into()],
        ),
        (Route::ListPolicies, vec!["".into()]),
        (Route::ActionStatus, vec!["".into()]),
    ] {
        for q in queries {
            let mut req = request(route.clone(), &q);
            req.pending_checkins = pending.clone();
            let with = answer(&f.admin, &req, f.now);
            let without = answer(&docs, &req, f.now);
            assert_eq!(with, without, "{route:?} ?{q}");
            compared += 1;
        }
    }
    assert!(compared > 80, "{compared}");
}

fn ids(f: &Fleet, query: &str) -> Vec<String> {
    let (status, body) = answer(&f.admin, &request(Route::ListAgents, query), f.now);
    assert_eq!(status, 200, "{body}");
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn listings_with_and_without_the_index_agree() {
    let f = fleet();
    // The filters select what they should (the comparison alone would pass on two empty lists).
    let (_, counts) = answer(&f.admin, &request(Route::AgentStatusCounts, ""), f.now);
    let statuses = crate::model::AgentStatus::ALL.map(|s| s.as_str());
    for s in statuses.into_iter().filter(|s| *s != "inactive") {
        assert!(
            counts["results"]["by_status"][s].as_u64() > Some(0),
            "{s}: {counts}"
        );
    }
    assert_eq!(counts["results"]["by_status"]["inactive"], 2, "{counts}");
    assert_agree(&f, &[]);
    // Checkin state the loop has not written yet is merged in both.
    assert_agree(
        &f,
        &[
            (
                "agent-004",
                json!({"last_checkin": at(f.now, 1), "last_checkin_status": "DEGRADED"}),
            ),
            (
                "agent-016",
                json!({"tags": ["pending"], "local_metadata": {"host": {"hostname": "moved"}}}),
            ),
            ("agent-999", json!({"last_checkin": at(f.now, 1)})),
        ],
    );
}

#[test]
fn each_agent_write_is_in_the_next_listing() {
    let f = fleet();
    let one = |id: &str| format!("kuery=agent.id%3A{id}&showInactive=true");
    assert_eq!(ids(&f, &one("agent-001")), ["agent-001"]); // builds the index
    let store: &dyn Store = &*f.store;

    // update_agent (tags, through the API's writes)
    let mut fields = Map::new();
    fields.insert("tags".into(), json!(["fresh"]));
    store.update_agent("agent-001", &fields).unwrap();
    assert_eq!(ids(&f, "kuery=tags%3Afresh"), ["agent-001"]);

    // update_agents (the checkin bulk writer)
    let mut write = Map::new();
    write.insert("last_checkin_status".into(), json!("DEGRADED"));
    write.insert("last_checkin".into(), json!(at(f.now, 1)));
    store
        .update_agents(&[("agent-010".into(), CheckinWrite::fields(write))])
        .unwrap();
    assert!(ids(&f, "kuery=status%3Adegraded").contains(&"agent-010".to_owned()));

    // policy_acked (revision)
    store
        .policy_acked(
            "agent-002",
            &PolicyAck {
                policy_id: "p1".into(),
                revision: 7,
                updated_at: at(f.now, 0),
                outputs: None,
            },
        )
        .unwrap();
    assert_eq!(ids(&f, "kuery=policy_revision_idx%3A7"), ["agent-002"]);

    // create_agent
    let agent = Agent {
        id: "agent-new".into(),
        active: true,
        policy_id: "p2".into(),
        enrolled_at: at(f.now, 0),
        ..Agent::default()
    };
    store.create_agent(&agent).unwrap();
    assert_eq!(ids(&f, &one("agent-new")), ["agent-new"]);

    // delete_agent
    store.delete_agent("agent-003").unwrap();
    assert!(ids(&f, &one("agent-003")).is_empty());

    // Through the management API's own write (PUT /api/fleet/agents/{id}).
    let mut put = request(Route::UpdateAgent("agent-005".into()), "");
    put.body = json!({"tags": ["via-api"]});
    assert_eq!(answer(&f.admin, &put, f.now).0, 200);
    assert_eq!(ids(&f, "kuery=tags%3Avia-api"), ["agent-005"]);
    assert_agree(&f, &[]);
}

#[test]
fn inactivity_timeout_from_the_policy() {
    assert_eq!(
        inactivity_timeout(&json!({})),
        Some(DEFAULT_INACTIVITY_TIMEOUT)
    );
    assert_eq!(inactivity_timeout(&json!({"inactivity_timeout": 0})), None);
    assert_eq!(
        inactivity_timeout(&json!({"inactivity_timeout": 60})),
        Some(Duration::from_secs(60))
    );
}

#[test]
fn the_index_is_small() {
    let f = fleet();
    let rows = f.store.agent_summaries().unwrap();
    let bytes: usize = rows.iter().map(|r| r.bytes()).sum();
    let per_agent = bytes / rows.len();
    // Printed for the README's figure (`cargo test --lib listing -- --nocapture`).
    println!("listing index: {per_agent} bytes per agent");
    assert!(per_agent < 400, "{per_agent} bytes per agent");
}
