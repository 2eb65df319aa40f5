//! The Fleet Server call sequences of es-contract.md §2/§3 against a live stand-in over HTTP:
//! bulk item semantics, realtime mget vs refreshed search, the msearch queries Q1–Q8, global
//! checkpoint long polls, fleet searches with `wait_for_checkpoints`, scripted updates and the
//! by-query APIs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use common::{eventually, fleet, ndjson, start};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[test]
fn info_product_header_and_auth() {
    let es = start(1000);
    let c = fleet(&es);
    let r = c.request("GET", "/", &[], None).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-elastic-product"), Some("Elasticsearch"));
    assert_eq!(r.json()["version"]["number"], "9.6.0");
    assert_eq!(r.json()["tagline"], "You Know, for Search");
    let anon = es_standin::Client::new(&es.url(), None).unwrap();
    let r = anon.request("GET", "/_bulk", &[], None).unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.header("x-elastic-product"), Some("Elasticsearch"));
    assert_eq!(
        r.headers
            .iter()
            .filter(|(k, _)| k == "www-authenticate")
            .count(),
        3
    );
    assert_eq!(r.json()["error"]["type"], "security_exception");
    let r = c.request("HEAD", "/", &[], None).unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    let r = c.request("GET", "/_nope/x/y", &[], None).unwrap();
    assert_eq!(r.status, 400);
}

#[test]
fn bulk_items_as_es() {
    let es = start(1000);
    let c = fleet(&es);
    let (s, v) = ndjson(
        &c,
        "/_bulk?refresh=true",
        &[
            json!({"create": {"_id": "A1", "_index": ".fleet-agents"}}),
            json!({"active": true, "agent": {"id": "A1", "version": "9.6.0"}, "enrolled_at": "2026-05-01T10:11:12Z"}),
            json!({"create": {"_id": "A1", "_index": ".fleet-agents"}}),
            json!({"active": true}),
            json!({"delete": {"_id": "nope", "_index": ".fleet-agents"}}),
            json!({"update": {"_id": "missing", "retry_on_conflict": 3, "_index": ".fleet-agents"}}),
            json!({"doc": {"x": 1}}),
            json!({"update": {"_id": "A1", "_index": ".fleet-agents"}}),
            json!({"doc": {"active": true}}),
            json!({"index": {"_index": "ordinary"}}),
            json!({"a": 1}),
            json!({"create": {"_id": "", "_index": "ordinary"}}),
            json!({"a": 1}),
        ],
    );
    assert_eq!(s, 200);
    assert_eq!(v["errors"], true);
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 7);
    let c0 = &items[0]["create"];
    assert_eq!(
        (
            c0["status"].clone(),
            c0["result"].clone(),
            c0["_index"].clone()
        ),
        (json!(201), json!("created"), json!(".fleet-agents-7"))
    );
    assert_eq!(
        c0["_shards"],
        json!({"total": 1, "successful": 1, "failed": 0})
    );
    assert_eq!(
        (
            c0["_seq_no"].clone(),
            c0["_version"].clone(),
            c0["forced_refresh"].clone()
        ),
        (json!(0), json!(1), json!(true))
    );
    let c1 = &items[1]["create"];
    assert_eq!(c1["status"], 409);
    assert_eq!(
        c1["error"]["reason"],
        "[A1]: version conflict, document already exists (current version [1])"
    );
    assert_eq!(c1["error"]["index"], ".fleet-agents-7");
    assert_eq!(c1["error"]["shard"], "0");
    assert!(
        c1["error"].get("root_cause").is_none(),
        "bulk items carry no root_cause"
    );
    let d = &items[2]["delete"];
    assert_eq!(
        (
            d["status"].clone(),
            d["result"].clone(),
            d["_seq_no"].clone()
        ),
        (json!(404), json!("not_found"), json!(1))
    );
    assert!(d.get("error").is_none());
    assert_eq!(items[3]["update"]["status"], 404);
    assert_eq!(
        items[3]["update"]["error"]["type"],
        "document_missing_exception"
    );
    assert_eq!(
        items[3]["update"]["error"]["reason"],
        "[missing]: document missing"
    );
    let n = &items[4]["update"];
    assert_eq!(
        (
            n["result"].clone(),
            n["status"].clone(),
            n["_shards"]["total"].clone(),
            n["_seq_no"].clone()
        ),
        (json!("noop"), json!(200), json!(0), json!(0))
    );
    let o = &items[5]["index"];
    assert_eq!(
        o["status"], 403,
        "the service account may not write ordinary indices: {o}"
    );
    assert_eq!(o["error"]["type"], "security_exception");
    assert_eq!(items[6]["create"]["status"], 400);
    assert_eq!(
        items[6]["create"]["error"]["reason"],
        "if _id is specified it must not be empty"
    );
    let (_, v) = ndjson(
        &es.client(),
        "/_bulk",
        &[json!({"index": {"_index": "ordinary"}}), json!({"a": 1})],
    );
    let o = &v["items"][0]["index"];
    assert_eq!(
        (o["status"].clone(), o["_id"].as_str().unwrap().len()),
        (json!(201), 20)
    );
    assert_eq!(o["_shards"]["total"], 2);
    // framing error is top-level
    let r = c
        .request(
            "POST",
            "/_bulk",
            &[("Content-Type", "application/json")],
            Some(b"{\"index\":{\"_index\":\"x\"}}\n{}"),
        )
        .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["error"]["reason"],
        "The bulk request must be terminated by a newline [\\n]"
    );
    // data streams: index op rejected, create works, concrete .ds- name
    let (_, v) = ndjson(
        &c,
        "/_bulk",
        &[
            json!({"index": {"_index": ".fleet-actions-results"}}),
            json!({"@timestamp": "2026-01-01T00:00:00Z"}),
            json!({"create": {"_id": "act:agent", "_index": ".fleet-actions-results"}}),
            json!({"@timestamp": "2026-01-01T00:00:00Z", "action_id": "act"}),
        ],
    );
    assert_eq!(v["items"][0]["index"]["status"], 400);
    assert!(v["items"][1]["create"]["_index"]
        .as_str()
        .unwrap()
        .starts_with(".ds-.fleet-actions-results-"));
}

#[test]
fn realtime_get_vs_search_visibility() {
    let es = start(1000);
    let c = fleet(&es);
    ndjson(
        &c,
        "/_bulk",
        &[
            json!({"create": {"_id": "A1", "_index": ".fleet-agents"}}),
            json!({"active": true, "access_api_key_id": "k1"}),
        ],
    );
    let (s, v) = c.json("POST", "/_mget", Some(&json!({"docs": [{"_index": ".fleet-agents", "_id": "A1"}, {"_index": ".fleet-agents", "_id": "B"}, {"_index": ".fleet-nope", "_id": "C"}]}))).unwrap();
    assert_eq!(s, 200);
    assert_eq!(v["docs"][0]["found"], true);
    assert_eq!(v["docs"][0]["_seq_no"], 0);
    assert_eq!(
        v["docs"][1],
        json!({"_index": ".fleet-agents-7", "_id": "B", "found": false})
    );
    assert_eq!(v["docs"][2]["_index"], ".fleet-nope");
    assert_eq!(
        v["docs"][2]["error"]["root_cause"][0]["type"],
        "index_not_found_exception"
    );
    let q1 = |c: &es_standin::Client| {
        ndjson(c, "/_msearch", &[json!({"index": ".fleet-agents"}), json!({"query": {"bool": {"filter": [{"term": {"access_api_key_id": "k1"}}]}}, "version": true})]).1
    };
    let v = q1(&c);
    assert_eq!(
        v["responses"][0]["hits"]["total"]["value"], 0,
        "not refreshed yet"
    );
    assert!(
        eventually(Duration::from_secs(3), || q1(&c)["responses"][0]["hits"]
            ["total"]["value"]
            == 1),
        "periodic refresh"
    );
    let v = q1(&c);
    assert_eq!(v["responses"][0]["status"], 200);
    assert_eq!(v["responses"][0]["hits"]["hits"][0]["_version"], 1);
    assert_eq!(v["responses"][0]["hits"]["max_score"], 0.0);
}

fn policy(id: &str, rev: i64, ts: &str) -> Value {
    json!({"@timestamp": ts, "policy_id": id, "revision_idx": rev, "coordinator_idx": 0, "default_fleet_server": false, "data": {"id": id, "revision": rev, "outputs": {"default": {"type": "elasticsearch"}}}})
}

#[test]
fn fleet_msearch_queries() {
    let es = start(1000);
    let c = fleet(&es);
    let (_, v) = ndjson(
        &c,
        "/_msearch",
        &[
            json!({"index": ".fleet-policies", "ignore_unavailable": true}),
            json!({"aggs": {"policy_id": {"aggs": {"revision_idx": {"top_hits": {"size": 1, "sort": [{"revision_idx": "desc"}]}}}, "terms": {"field": "policy_id", "size": 10000}}}, "size": 0}),
            json!({"index": ".fleet-policies"}),
            json!({"query": {"match_all": {}}}),
        ],
    );
    assert_eq!(v["responses"][0]["_shards"]["total"], 0);
    assert!(v["responses"][0].get("aggregations").is_none());
    assert_eq!(v["responses"][1]["status"], 404);
    assert_eq!(
        v["responses"][1]["error"]["reason"],
        "no such index [.fleet-policies]"
    );
    ndjson(
        &c,
        "/_bulk?refresh=true",
        &[
            json!({"create": {"_index": ".fleet-policies"}}),
            policy("p1", 1, "2026-01-01T00:00:00Z"),
            json!({"create": {"_index": ".fleet-policies"}}),
            policy("p1", 2, "2026-01-02T00:00:00Z"),
            json!({"create": {"_index": ".fleet-policies"}}),
            policy("p2", 5, "2026-01-03T00:00:00Z"),
        ],
    );
    let (_, v) = ndjson(
        &c,
        "/_msearch",
        &[
            json!({"index": ".fleet-policies", "ignore_unavailable": true}),
            json!({"aggs": {"policy_id": {"aggs": {"revision_idx": {"top_hits": {"size": 1, "sort": [{"revision_idx": "desc"}]}}}, "terms": {"field": "policy_id", "size": 10000}}}, "size": 0}),
            json!({"index": ".fleet-policies"}),
            json!({"_source": {"includes": ["data.outputs"]}, "size": 100, "sort": [{"@timestamp": "desc"}]}),
            json!({"index": ".fleet-policies"}),
            json!({"query": {"term": {"data.id": "p1"}}}),
            json!({"index": ".fleet-policies"}),
            json!({"sort": [{"data.revision": "asc"}]}),
        ],
    );
    let b = &v["responses"][0]["aggregations"]["policy_id"]["buckets"];
    assert_eq!(b[0]["key"], "p1");
    assert_eq!(b[0]["doc_count"], 2);
    assert_eq!(
        b[0]["revision_idx"]["hits"]["hits"][0]["_source"]["revision_idx"],
        2
    );
    assert_eq!(b[0]["revision_idx"]["hits"]["hits"][0]["sort"], json!([2]));
    assert_eq!(b[1]["key"], "p2");
    assert_eq!(v["responses"][0]["hits"]["hits"], json!([]));
    let h = &v["responses"][1]["hits"];
    assert_eq!(
        h["hits"][0]["_source"],
        json!({"data": {"outputs": {"default": {"type": "elasticsearch"}}}})
    );
    assert_eq!(h["hits"][0]["_score"], Value::Null);
    assert_eq!(h["max_score"], Value::Null);
    assert_eq!(h["hits"][0]["sort"], json!([1767398400000i64]));
    assert_eq!(
        v["responses"][2]["hits"]["total"]["value"], 0,
        "data is enabled:false"
    );
    assert_eq!(v["responses"][3]["status"], 400);
    assert_eq!(
        v["responses"][3]["error"]["caused_by"]["reason"],
        "No mapping found for [data.revision] in order to sort on"
    );
}

#[test]
fn global_checkpoints_long_poll() {
    let es = start(1000);
    let c = fleet(&es);
    let r = c
        .request(
            "GET",
            "/.fleet-actions/_fleet/global_checkpoints",
            &[],
            None,
        )
        .unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["type"], "index_not_found_exception");
    let r = c
        .request(
            "GET",
            "/.fleet-actions/_fleet/global_checkpoints?wait_for_index=true",
            &[],
            None,
        )
        .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["reason"], "Validation Failed: 1: If wait_for_index is set to true, wait_for_advance must also be set to true.;");
    // a long poll on a missing index is released by the first write
    let c2 = c.clone();
    let t = std::thread::spawn(move || {
        c2.json("GET", "/.fleet-actions/_fleet/global_checkpoints?checkpoints=-1&timeout=10000ms&wait_for_advance=true&wait_for_index=true", None).unwrap()
    });
    std::thread::sleep(Duration::from_millis(100));
    ndjson(
        &c,
        "/_bulk",
        &[
            json!({"create": {"_id": "a1", "_index": ".fleet-actions"}}),
            json!({"action_id": "x", "agents": ["A1"], "expiration": "2099-01-01T00:00:00Z"}),
        ],
    );
    let (s, v) = t.join().unwrap();
    assert_eq!(
        (s, v),
        (200, json!({"timed_out": false, "global_checkpoints": [0]}))
    );
    let started = Instant::now();
    let (s, v) = c.json("GET", "/.fleet-actions/_fleet/global_checkpoints?checkpoints=0&timeout=200ms&wait_for_advance=true&wait_for_index=true", None).unwrap();
    assert_eq!(
        (s, v),
        (200, json!({"timed_out": true, "global_checkpoints": [0]}))
    );
    assert!(started.elapsed() >= Duration::from_millis(190));
    // deletes advance the checkpoint too
    ndjson(
        &c,
        "/_bulk",
        &[json!({"delete": {"_id": "zzz", "_index": ".fleet-actions"}})],
    );
    assert_eq!(es.global_checkpoint(".fleet-actions"), Some(1));
}

#[test]
fn fleet_search_waits_for_refresh() {
    let es = start(300);
    let c = fleet(&es);
    ndjson(
        &c,
        "/_bulk",
        &[
            json!({"create": {"_id": "a1", "_index": ".fleet-actions"}}),
            json!({"action_id": "x", "agents": ["A1"], "expiration": "2099-01-01T00:00:00Z", "@timestamp": "2026-01-01T00:00:00Z"}),
        ],
    );
    let q8 = json!({"query": {"bool": {"filter": [{"range": {"_seq_no": {"gt": -1}}}, {"range": {"_seq_no": {"lte": 0}}}, {"range": {"expiration": {"gt": "2026-06-01T00:00:00Z"}}}]}}, "seq_no_primary_term": true, "size": 1000, "sort": ["_seq_no"]});
    let started = Instant::now();
    let (s, v) = c
        .json(
            "POST",
            "/.fleet-actions/_fleet/_fleet_search?wait_for_checkpoints=0",
            Some(&q8),
        )
        .unwrap();
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["hits"]["hits"][0]["_seq_no"], 0);
    assert_eq!(v["hits"]["hits"][0]["_index"], ".fleet-actions-7");
    assert!(started.elapsed() < Duration::from_secs(2));
    let (s, v) = c
        .json(
            "POST",
            "/.fleet-actions/_fleet/_fleet_search?wait_for_checkpoints=5",
            Some(&q8),
        )
        .unwrap();
    assert_eq!(s, 400);
    assert_eq!(v["error"]["type"], "search_phase_execution_exception");
    assert_eq!(
        v["error"]["caused_by"]["reason"],
        "Cannot wait for unissued seqNo checkpoint [wait_for_checkpoint=5, max_issued_seqNo=0]"
    );
    let (s, _) = c
        .json(
            "POST",
            "/.fleet-actions/_fleet/_fleet_search?wait_for_checkpoints=-1",
            Some(&q8),
        )
        .unwrap();
    assert_eq!(s, 200);
    let (s, v) = c
        .json(
            "POST",
            "/.fleet-actions,.fleet-agents/_fleet/_fleet_search",
            Some(&q8),
        )
        .unwrap();
    assert_eq!(s, 400, "{v}");
    // Q4 through _fleet_msearch
    let (_, v) = ndjson(
        &c,
        "/_fleet/_fleet_msearch",
        &[
            json!({"index": ".fleet-actions", "wait_for_checkpoints": [0]}),
            json!({"_source": {"excludes": ["agents"]}, "query": {"bool": {"filter": [{"range": {"_seq_no": {"gt": -1}}}, {"range": {"_seq_no": {"lte": 0}}}, {"range": {"expiration": {"gt": "2026-06-01T00:00:00Z"}}}, {"terms": {"agents": ["A1"]}}]}}, "seq_no_primary_term": true, "size": 100, "sort": ["_seq_no"]}),
            json!({"wait_for_checkpoints": [0]}),
            json!({}),
        ],
    );
    let h = &v["responses"][0]["hits"]["hits"][0];
    assert!(h["_source"].get("agents").is_none());
    assert_eq!(h["_source"]["action_id"], "x");
    assert_eq!(v["responses"][1]["status"], 400);
}

#[test]
fn scripted_updates_and_by_query() {
    let es = start(1000);
    let c = fleet(&es);
    ndjson(
        &c,
        "/_bulk?refresh=true",
        &[
            json!({"create": {"_id": "A1", "_index": ".fleet-agents"}}),
            json!({"policy_id": "p1", "active": true, "audit_unenrolled_reason": "uninstall", "default_api_key_id": "old", "default_api_key_history": [{"id": "older", "retired_at": "t0"}], "policy_output_permissions_hash": "h"}),
            json!({"create": {"_id": "A2", "_index": ".fleet-agents"}}),
            json!({"policy_id": "p1", "active": true, "agent": {"id": "A2"}}),
        ],
    );
    // ack of POLICY_CHANGE for another policy: ctx.op = "noop"
    let s3 = "if (ctx._source.policy_id == params.id) {ctx._source.remove('default_api_key_history');ctx._source.policy_revision_idx = params.rev;ctx._source.updated_at = params.ts;} else {ctx.op = \"noop\";}";
    let (_, v) = ndjson(
        &c,
        "/_bulk?refresh=true",
        &[
            json!({"update": {"_id": "A2", "retry_on_conflict": 3, "_index": ".fleet-agents"}}),
            json!({"script": {"lang": "painless", "source": s3, "params": {"id": "p9", "rev": 3, "ts": "2026-01-01T00:00:00Z"}}}),
            json!({"update": {"_id": "A2", "_index": ".fleet-agents"}}),
            json!({"script": {"lang": "painless", "source": "this is not painless )", "params": {}}}),
        ],
    );
    assert_eq!(v["items"][0]["update"]["result"], "noop");
    assert_eq!(v["items"][1]["update"]["status"], 400);
    assert_eq!(v["items"][1]["update"]["error"]["type"], "script_exception");
    assert_eq!(v["items"][1]["update"]["error"]["reason"], "compile error");
    // M1: must_not as an object and a bare string script, conflicts=proceed
    let m1 = json!({"query": {"bool": {"must_not": {"exists": {"field": "agent.id"}}}}, "script": "ctx._source.agent = [:]; ctx._source.agent.id = ctx._id;"});
    let (s, v) = c
        .json(
            "POST",
            "/.fleet-agents/_update_by_query?conflicts=proceed&refresh=true",
            Some(&m1),
        )
        .unwrap();
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (
            v["total"].clone(),
            v["updated"].clone(),
            v["version_conflicts"].clone()
        ),
        (json!(1), json!(1), json!(0))
    );
    assert_eq!(
        es.document(".fleet-agents", "A1").unwrap()["agent"]["id"],
        "A1"
    );
    // GC of expired actions
    ndjson(
        &c,
        "/_bulk?refresh=true",
        &[
            json!({"create": {"_id": "old", "_index": ".fleet-actions"}}),
            json!({"expiration": "2000-01-01T00:00:00Z"}),
            json!({"create": {"_id": "new", "_index": ".fleet-actions"}}),
            json!({"expiration": "2099-01-01T00:00:00Z"}),
        ],
    );
    let (s, v) = c.json("POST", "/.fleet-actions/_delete_by_query", Some(&json!({"query": {"bool": {"filter": [{"range": {"expiration": {"lte": "now-30d"}}}]}}}))).unwrap();
    assert_eq!(s, 200);
    assert_eq!(v["deleted"], 1);
    assert!(v.get("updated").is_none());
    let (s, _) = c
        .json(
            "POST",
            "/.fleet-nothing/_delete_by_query",
            Some(&json!({"query": {"match_all": {}}})),
        )
        .unwrap();
    assert_eq!(s, 404);
}

#[test]
fn update_api_and_refresh_param() {
    let es = start(60_000);
    let c = es.client();
    let (s, v) = c
        .json(
            "POST",
            "/t/_update/1?refresh=true",
            Some(&json!({"doc": {"a": {"b": 1}}, "doc_as_upsert": true})),
        )
        .unwrap();
    assert_eq!(
        (s, v["result"].clone(), v["forced_refresh"].clone()),
        (201, json!("created"), json!(true))
    );
    let (s, v) = c
        .json(
            "POST",
            "/t/_update/1?_source=true",
            Some(&json!({"doc": {"a": {"c": null}}})),
        )
        .unwrap();
    assert_eq!(s, 200);
    assert_eq!(v["get"]["_source"], json!({"a": {"b": 1, "c": null}}));
    let (s, v) = c.json("POST", "/t/_update/1", Some(&json!({}))).unwrap();
    assert_eq!(s, 400);
    assert_eq!(
        v["error"]["reason"],
        "Validation Failed: 1: script or doc is missing;"
    );
    let (s, _) = c
        .json("POST", "/t/_doc/2?refresh=bogus", Some(&json!({})))
        .unwrap();
    assert_eq!(s, 400);
    let (_, v) = c
        .json(
            "POST",
            "/t/_search",
            Some(&json!({"query": {"match_all": {}}})),
        )
        .unwrap();
    assert_eq!(
        v["hits"]["total"]["value"], 1,
        "only the refreshed write is visible"
    );
}

#[test]
fn malformed_requests_get_es_errors_not_panics() {
    let es = start(1000);
    let c = es.client();
    let bodies: [&[u8]; 6] = [
        b"",
        b"{",
        b"[]",
        b"\"x\"",
        b"{\"query\":{\"term\":{}}}",
        b"{\"a\":1}\n{\"b\":2}\n",
    ];
    let targets = [
        ("POST", "/_bulk"),
        ("POST", "/_msearch"),
        ("POST", "/_fleet/_fleet_msearch"),
        ("POST", "/x/_search"),
        ("POST", "/x/_fleet/_fleet_search?wait_for_checkpoints=a"),
        ("POST", "/_mget"),
        ("POST", "/x/_update/1"),
        ("PUT", "/x/_doc/1"),
        ("POST", "/x/_update_by_query"),
        ("POST", "/x/_delete_by_query"),
        ("POST", "/_security/api_key"),
        ("DELETE", "/_security/api_key"),
        ("POST", "/_security/api_key/_bulk_update"),
        ("POST", "/_fleet/secret"),
        ("PUT", "/x"),
        (
            "GET",
            "/x/_fleet/global_checkpoints?checkpoints=zz&timeout=1e99s",
        ),
        (
            "POST",
            "/x/_search?size=99999999999999999999&from=18446744073709551615",
        ),
    ];
    for (m, p) in targets {
        for b in bodies {
            let r = c
                .request(m, p, &[("Content-Type", "application/json")], Some(b))
                .unwrap();
            assert_eq!(
                r.header("x-elastic-product"),
                Some("Elasticsearch"),
                "{m} {p}"
            );
            assert!(
                r.status < 500,
                "{m} {p} {:?} -> {} {}",
                String::from_utf8_lossy(b),
                r.status,
                String::from_utf8_lossy(&r.body)
            );
        }
    }
    assert_eq!(c.json("GET", "/", None).unwrap().0, 200);
}
