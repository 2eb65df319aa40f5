//! The [`Store`] methods of [`EsStore`], each one the call(s) es-contract.md §2 names:
//!
//! | method | call |
//! |---|---|
//! | `authenticate` | `GET /_security/_authenticate` with the agent's `ApiKey` (401 → `None`), then `GET /_security/api_key?id=&owner=true` for the key's metadata |
//! | `create_api_key`, `api_key_roles`, `update_api_key_roles`, `invalidate_api_keys` | `keys.rs` (shared with remote clusters) |
//! | `enrollment_key` | `POST /_msearch` Q5 on `.fleet-enrollment-api-keys` |
//! | `agent` | `POST /_mget` (realtime) |
//! | `create_agent` | `POST /_bulk?refresh=true` `create` (409 → `Conflict`) |
//! | `update_agent` | `POST /_bulk?refresh=true` `update` `retry_on_conflict:3` `{"doc":..}` (404 → `NotFound`) |
//! | `delete_agent` | `POST /_bulk` `delete` |
//! | `update_agents` | one `POST /_bulk` of `update` ops (the checkin bulk writer): `{"doc":..}`, or script S1 when the audit members go (`scripts.rs`) |
//! | `policy_acked` | `POST /_bulk?refresh=true` `update` `retry_on_conflict:3` script S3, then `{"doc":{"outputs":..}}` |
//! | `pending_actions` | `POST /_fleet/_fleet_msearch` Q4 with `wait_for_checkpoints` |
//! | `action` / `action_seq_no` | `POST /_msearch` Q3 / Q2 on `.fleet-actions` |
//! | `create_action_result` | `POST /_bulk?refresh=true` `create` `<action_id>:<agent_id>` (409 → `Existed`) |
//! | `write_output_health` | `POST /_bulk?refresh=true` `create` `<uuid>` in `logs-fleet_server.output_health-default` |
//! | `secret` | `GET /_fleet/secret/<id>` |
//! | `latest_policies` | `POST /_msearch` Q6 with `ignore_unavailable` |
//! | `changes` | `feed.rs` |

use std::time::{Duration, SystemTime};

use serde_json::{json, Map, Value};

use super::bodies::{
    self, encode, Header, Op, ACTIONS, AGENTS, ENROLLMENT_KEYS, POLICIES, RESULTS,
};
use super::client::{item_error, Method, Req};
use super::feed::action_from_hit;
use super::keys::{self, decode_failed};
use super::scripts;
use super::EsStore;
use crate::backend::{
    ApiKey, ApiKeyInfo, Changes, CheckinWrite, Created, Cursor, NewApiKey, PolicyAck, Store,
    StoreError,
};
use crate::model::time::rfc3339_seconds;
use crate::model::{Action, ActionResult, Agent, EnrollmentKey, OutputHealth, PolicyDoc};

/// One bulk operation: op, `_id`, `retry_on_conflict`, index, source line (none for delete).
pub(super) struct BulkOp<'a> {
    op: Op,
    id: &'a str,
    retry_on_conflict: Option<u32>,
    index: &'a str,
    source: Option<Value>,
    /// A partial-document update's members, serialised as `{"doc": …}` straight from the
    /// caller's map (a checkin's 19 MiB message is not copied into a `Value` first).
    doc: Option<&'a Map<String, Value>>,
}

impl<'a> BulkOp<'a> {
    pub(super) fn new(op: Op, id: &'a str, index: &'a str, source: Option<Value>) -> BulkOp<'a> {
        BulkOp {
            op,
            id,
            retry_on_conflict: None,
            index,
            source,
            doc: None,
        }
    }

    /// An update of `id` with the partial document `doc`.
    fn update_doc(id: &'a str, index: &'a str, doc: &'a Map<String, Value>) -> BulkOp<'a> {
        BulkOp {
            doc: Some(doc),
            ..BulkOp::new(Op::Update, id, index, None)
        }
    }
}

/// Appends `value` as JSON to `body`.
fn write_json<T: serde::Serialize + ?Sized>(
    body: &mut Vec<u8>,
    value: &T,
) -> Result<(), StoreError> {
    serde_json::to_writer(body, value).map_err(|e| decode_failed("bulk request", e))
}

/// One bulk item's outcome.
pub(super) struct Item {
    pub(super) status: u16,
    pub(super) raw: Value,
}

/// Drops `null`s that ES keeps (a `{"doc":{"f":null}}` stores an explicit null) where the model
/// expects absence: top-level fields and the entries and fields of `outputs`.
fn strip_nulls(source: &mut Map<String, Value>) {
    source.retain(|_, v| !v.is_null());
    if let Some(Value::Object(outputs)) = source.get_mut("outputs") {
        outputs.retain(|_, v| !v.is_null());
        for out in outputs.values_mut() {
            if let Value::Object(fields) = out {
                fields.retain(|_, v| !v.is_null());
            }
        }
    }
}

impl EsStore {
    /// One agent through `path` (`/_mget` with or without a source filter); the `_source` is
    /// taken out of the response, not copied.
    fn read_agent(&self, id: &str, path: &str) -> Result<Option<Agent>, StoreError> {
        let req = Req::new(Method::Post, path).raw(bodies::mget(AGENTS, id));
        let mut v = self.client.call(&req, &[])?.json();
        let mut doc = v
            .pointer_mut("/docs/0")
            .map(Value::take)
            .unwrap_or(Value::Null);
        if doc["found"].as_bool() != Some(true) {
            return Ok(None);
        }
        let Some(Value::Object(mut source)) = doc.get_mut("_source").map(Value::take) else {
            return Err(decode_failed("agent", "no _source"));
        };
        strip_nulls(&mut source);
        let mut agent: Agent = serde_json::from_value(Value::Object(source))
            .map_err(|e| decode_failed(&format!("agent {id}"), e))?;
        agent.id = id.to_owned();
        Ok(Some(agent))
    }

    pub(super) fn bulk(&self, refresh: bool, ops: &[BulkOp<'_>]) -> Result<Vec<Item>, StoreError> {
        // Serialised once, straight into the request body (no intermediate strings).
        let mut body: Vec<u8> = Vec::new();
        for BulkOp {
            op,
            id,
            retry_on_conflict,
            index,
            source,
            doc,
        } in ops
        {
            body.extend_from_slice(
                bodies::bulk_action(*op, id, *retry_on_conflict, index).as_bytes(),
            );
            body.push(b'\n');
            if let Some(source) = source {
                write_json(&mut body, source)?;
                body.push(b'\n');
                #[cfg(test)]
                if let Ok(mut w) = self.written.lock() {
                    let doc = match op {
                        Op::Update => source.get("doc").cloned().unwrap_or(Value::Null),
                        _ => source.clone(),
                    };
                    w.push(((*index).to_owned(), doc));
                }
            }
            if let Some(doc) = doc {
                body.extend_from_slice(b"{\"doc\":");
                write_json(&mut body, *doc)?;
                body.extend_from_slice(b"}\n");
                #[cfg(test)]
                if let Ok(mut w) = self.written.lock() {
                    w.push(((*index).to_owned(), Value::Object((*doc).clone())));
                }
            }
        }
        let path = if refresh {
            "/_bulk?refresh=true"
        } else {
            "/_bulk"
        };
        let resp = self
            .client
            .call(&Req::new(Method::Post, path).raw_bytes(body), &[])?;
        let v = resp.json();
        let items = v["items"].as_array().cloned().unwrap_or_default();
        if items.len() != ops.len() {
            return Err(StoreError::Failed {
                status: 500,
                detail: format!(
                    "Bulk queue length mismatch: {} items for {} operations",
                    items.len(),
                    ops.len()
                ),
            });
        }
        Ok(ops
            .iter()
            .zip(items)
            .map(|(op, item)| {
                let raw = item.get(op.op.name()).cloned().unwrap_or(Value::Null);
                let status = raw["status"]
                    .as_u64()
                    .and_then(|s| u16::try_from(s).ok())
                    .unwrap_or(500);
                Item { status, raw }
            })
            .collect())
    }

    /// One search through `_msearch` (or `_fleet/_fleet_msearch`); `None` for a missing index.
    fn search(
        &self,
        path: &str,
        index: &str,
        header: Header,
        body: &Value,
    ) -> Result<Option<Value>, StoreError> {
        let req = Req::new(Method::Post, path).raw(bodies::msearch(index, header, body));
        let mut v = self.client.call(&req, &[])?.json();
        let item = v
            .pointer_mut("/responses/0")
            .map(Value::take)
            .unwrap_or(Value::Null);
        let status = item["status"]
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .unwrap_or(200);
        if status == 200 {
            return Ok(Some(item));
        }
        if status == 404
            && super::client::error_type(&item).as_deref() == Some("index_not_found_exception")
        {
            return Ok(None);
        }
        Err(item_error(status, &item))
    }

    pub(super) fn hits(
        &self,
        path: &str,
        index: &str,
        header: Header,
        body: &Value,
    ) -> Result<Vec<Value>, StoreError> {
        Ok(match self.search(path, index, header, body)? {
            Some(mut item) => match item.pointer_mut("/hits/hits").map(Value::take) {
                Some(Value::Array(h)) => h,
                _ => Vec::new(),
            },
            None => Vec::new(),
        })
    }

    /// The `.fleet-actions` checkpoint: the follower's when it runs, else asked now.
    fn actions_checkpoint(&self) -> Result<i64, StoreError> {
        match self.feed.actions_checkpoint() {
            Some(cp) => Ok(cp),
            None => self.feed.checkpoint(ACTIONS),
        }
    }
}

impl Store for EsStore {
    fn files(&self) -> Option<&dyn crate::backend::files::FileStore> {
        Some(self)
    }

    fn authenticate(&self, key: &ApiKey) -> Result<Option<ApiKeyInfo>, StoreError> {
        let req = Req {
            api_key: Some(key),
            ..Req::new(Method::Get, "/_security/_authenticate")
        };
        let resp = self.client.call(&req, &[401])?;
        if resp.status == 401 {
            return Ok(None);
        }
        let v = resp.json();
        let id = v
            .pointer("/api_key/id")
            .and_then(Value::as_str)
            .unwrap_or(&key.id)
            .to_owned();
        // `_authenticate` reports the owner's metadata; the key's own comes from its record.
        // A failure there never turns a valid key into an error.
        let metadata = match keys::record(&self.client, &id) {
            Ok(Some(record)) => record.get("metadata").cloned().unwrap_or(Value::Null),
            Ok(None) => Value::Null,
            Err(e) => {
                log::debug!("metadata of API key {id}: {e}");
                Value::Null
            }
        };
        Ok(Some(ApiKeyInfo {
            name: v
                .pointer("/api_key/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            id,
            enabled: v["enabled"].as_bool().unwrap_or(false),
            metadata,
        }))
    }

    fn create_api_key(&self, key: &NewApiKey) -> Result<ApiKey, StoreError> {
        keys::create(&self.client, key)
    }

    fn api_key_roles(&self, id: &str) -> Result<Option<Value>, StoreError> {
        keys::roles(&self.client, id)
    }

    fn update_api_key_roles(&self, id: &str, roles: &Value) -> Result<(), StoreError> {
        keys::update_roles(&self.client, id, roles)
    }

    fn invalidate_api_keys(&self, ids: &[String]) -> Result<(), StoreError> {
        keys::invalidate(&self.client, ids)
    }

    fn enrollment_key(&self, api_key_id: &str) -> Result<Option<EnrollmentKey>, StoreError> {
        let hits = self.hits(
            "/_msearch",
            ENROLLMENT_KEYS,
            Header::Plain,
            &bodies::q_enrollment_key(api_key_id),
        )?;
        hits.first()
            .map(|h| {
                serde_json::from_value(h["_source"].clone())
                    .map_err(|e| decode_failed("enrollment key", e))
            })
            .transpose()
    }

    fn policy_enrollment_key(&self, policy_id: &str) -> Result<Option<EnrollmentKey>, StoreError> {
        let hits = self.hits(
            "/_msearch",
            ENROLLMENT_KEYS,
            Header::Plain,
            &bodies::q_policy_enrollment_key(policy_id),
        )?;
        hits.first()
            .map(|h| {
                serde_json::from_value(h["_source"].clone())
                    .map_err(|e| decode_failed("enrollment key", e))
            })
            .transpose()
    }

    fn agent(&self, id: &str) -> Result<Option<Agent>, StoreError> {
        self.read_agent(id, "/_mget")
    }

    fn agent_for_request(&self, id: &str) -> Result<Option<Agent>, StoreError> {
        // Elasticsearch leaves the member out: it is neither sent nor parsed here.
        self.read_agent(id, "/_mget?_source_excludes=last_checkin_message")
    }

    fn agent_by_enrollment_id(&self, enrollment_id: &str) -> Result<Option<Agent>, StoreError> {
        // §2.3: an index refresh before the search, so a just-created agent is found.
        self.client.call(
            &Req::new(Method::Post, format!("/{AGENTS}/_refresh")),
            &[404],
        )?;
        let hits = self.hits(
            "/_msearch",
            AGENTS,
            Header::Plain,
            &bodies::q_agent_by_enrollment_id(enrollment_id),
        )?;
        match hits.first().and_then(|h| h["_id"].as_str()) {
            Some(id) => self.agent(id),
            None => Ok(None),
        }
    }

    fn agent_by_access_key(&self, api_key_id: &str) -> Result<Option<Agent>, StoreError> {
        let hits = self.hits(
            "/_msearch",
            AGENTS,
            Header::Plain,
            &bodies::q_agent_by_access_key(api_key_id),
        )?;
        match hits.first().and_then(|h| h["_id"].as_str()) {
            Some(id) => self.agent(id),
            None => Ok(None),
        }
    }

    fn artifact(
        &self,
        identifier: &str,
        decoded_sha256: &str,
    ) -> Result<Option<crate::model::Artifact>, StoreError> {
        let hits = self.hits(
            "/_msearch",
            bodies::ARTIFACTS,
            Header::Plain,
            &bodies::q_artifact(identifier, decoded_sha256),
        )?;
        hits.first()
            .map(|hit| {
                serde_json::from_value(hit["_source"].clone())
                    .map_err(|e| decode_failed("artifact", e))
            })
            .transpose()
    }

    fn create_agent(&self, agent: &Agent) -> Result<(), StoreError> {
        let source = serde_json::to_value(agent).map_err(|e| decode_failed("agent", e))?;
        let items = self.bulk(
            true,
            &[BulkOp::new(Op::Create, &agent.id, AGENTS, Some(source))],
        )?;
        match items.first() {
            Some(i) if matches!(i.status, 200 | 201) => Ok(()),
            Some(i) if i.status == 409 => Err(StoreError::Conflict),
            Some(i) => Err(item_error(i.status, &i.raw)),
            None => Err(decode_failed("bulk response", "no item")),
        }
    }

    fn update_agent(&self, id: &str, fields: &Map<String, Value>) -> Result<(), StoreError> {
        let doc = json!({ "doc": fields });
        let items = self.bulk(
            true,
            &[BulkOp {
                retry_on_conflict: Some(3),
                ..BulkOp::new(Op::Update, id, AGENTS, Some(doc))
            }],
        )?;
        items.first().map_or(
            Err(decode_failed("bulk response", "no item")),
            update_result,
        )
    }

    fn delete_agent(&self, id: &str) -> Result<(), StoreError> {
        let items = self.bulk(false, &[BulkOp::new(Op::Delete, id, AGENTS, None)])?;
        match items.first() {
            Some(i) if matches!(i.status, 200 | 404) => Ok(()),
            Some(i) => Err(item_error(i.status, &i.raw)),
            None => Err(decode_failed("bulk response", "no item")),
        }
    }

    fn update_agents(
        &self,
        updates: &[(String, CheckinWrite)],
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        // A write clearing the audit members is S1 (plus a partial document when it carries
        // members S1 does not set): more than one op can answer for one write.
        let mut ops = Vec::with_capacity(updates.len());
        let mut owner = Vec::with_capacity(updates.len());
        for (n, (id, write)) in updates.iter().enumerate() {
            // An OpAMP collector's effective configuration is replaced whole (S2).
            if write.clear_audit {
                for body in scripts::checkin_updates(write) {
                    ops.push(BulkOp::new(Op::Update, id, AGENTS, Some(body)));
                    owner.push(n);
                }
            } else if super::opamp_script::scripted(&write.fields) {
                let body = super::opamp_script::update_body(&write.fields);
                ops.push(BulkOp::new(Op::Update, id, AGENTS, Some(body)));
                owner.push(n);
            } else {
                // A partial document, serialised from the state itself.
                ops.push(BulkOp::update_doc(id, AGENTS, &write.fields));
                owner.push(n);
            }
        }
        let mut results: Vec<Result<(), StoreError>> = vec![Ok(()); updates.len()];
        for (item, n) in self.bulk(false, &ops)?.iter().zip(owner) {
            if let (Err(e), Some(slot @ Ok(()))) = (update_result(item), results.get_mut(n)) {
                *slot = Err(e);
            }
        }
        Ok(results)
    }

    fn policy_acked(&self, id: &str, ack: &PolicyAck) -> Result<(), StoreError> {
        let script = scripts::policy_ack(&ack.policy_id, ack.revision, &ack.updated_at);
        let mut ops = vec![BulkOp {
            retry_on_conflict: Some(3),
            ..BulkOp::new(Op::Update, id, AGENTS, Some(script))
        }];
        if let Some(outputs) = &ack.outputs {
            ops.push(BulkOp {
                retry_on_conflict: Some(3),
                ..BulkOp::new(
                    Op::Update,
                    id,
                    AGENTS,
                    Some(json!({"doc": {"outputs": outputs}})),
                )
            });
        }
        let items = self.bulk(true, &ops)?;
        if items.is_empty() {
            return Err(decode_failed("bulk response", "no item"));
        }
        items.iter().try_for_each(update_result)
    }

    fn pending_actions(
        &self,
        agent_id: &str,
        after_seq: i64,
        now: SystemTime,
        limit: usize,
    ) -> Result<Vec<Action>, StoreError> {
        let checkpoint = self.actions_checkpoint()?;
        if checkpoint <= after_seq || limit == 0 {
            return Ok(Vec::new());
        }
        let body = bodies::q_pending(
            agent_id,
            after_seq,
            checkpoint,
            &rfc3339_seconds(now),
            limit,
        );
        let hits = self.hits(
            "/_fleet/_fleet_msearch",
            ACTIONS,
            Header::WaitFor(checkpoint),
            &body,
        )?;
        Ok(hits.iter().filter_map(action_from_hit).collect())
    }

    fn action(&self, action_id: &str) -> Result<Option<Action>, StoreError> {
        let hits = self.hits(
            "/_msearch",
            ACTIONS,
            Header::Plain,
            &bodies::q_action(action_id),
        )?;
        Ok(hits.first().and_then(action_from_hit))
    }

    fn action_seq_no(&self, doc_id: &str) -> Result<Option<i64>, StoreError> {
        let hits = self.hits(
            "/_msearch",
            ACTIONS,
            Header::Plain,
            &bodies::q_action_seq_no(doc_id),
        )?;
        Ok(hits.first().and_then(|h| h["_seq_no"].as_i64()))
    }

    fn create_action_result(&self, result: &ActionResult) -> Result<Created, StoreError> {
        let source = serde_json::to_value(result).map_err(|e| decode_failed("action result", e))?;
        let id = result.doc_id();
        let items = self.bulk(true, &[BulkOp::new(Op::Create, &id, RESULTS, Some(source))])?;
        match items.first() {
            Some(i) if matches!(i.status, 200 | 201) => Ok(Created::New),
            Some(i) if i.status == 409 => Ok(Created::Existed),
            Some(i) => Err(item_error(i.status, &i.raw)),
            None => Err(decode_failed("bulk response", "no item")),
        }
    }

    fn write_output_health(&self, doc: &OutputHealth) -> Result<(), StoreError> {
        let source = serde_json::to_value(doc).map_err(|e| decode_failed("output health", e))?;
        let id = crate::backend::ops::uuid_v4();
        let items = self.bulk(
            true,
            &[BulkOp::new(
                Op::Create,
                &id,
                OutputHealth::INDEX,
                Some(source),
            )],
        )?;
        match items.first() {
            Some(i) if matches!(i.status, 200 | 201) => Ok(()),
            Some(i) => Err(item_error(i.status, &i.raw)),
            None => Err(decode_failed("bulk response", "no item")),
        }
    }

    fn secret(&self, id: &str) -> Result<Option<String>, StoreError> {
        let req = Req {
            accept_json: true,
            ..Req::new(Method::Get, format!("/_fleet/secret/{}", encode(id)))
        };
        let resp = self.client.call(&req, &[404])?;
        if resp.status == 404 {
            return Ok(None);
        }
        Ok(match resp.json().get("value") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Null) | None => None,
            Some(other) => Some(other.to_string()),
        })
    }

    fn latest_policies(&self) -> Result<Vec<PolicyDoc>, StoreError> {
        let Some(item) = self.search(
            "/_msearch",
            POLICIES,
            Header::IgnoreUnavailable,
            &bodies::q_latest_policies(),
        )?
        else {
            return Ok(Vec::new());
        };
        let buckets = item
            .pointer("/aggregations/policy_id/buckets")
            .and_then(Value::as_array);
        let mut out: Vec<PolicyDoc> = buckets
            .into_iter()
            .flatten()
            .filter_map(|b| b.pointer("/revision_idx/hits/hits/0/_source"))
            .filter_map(|s| match serde_json::from_value(s.clone()) {
                Ok(doc) => Some(doc),
                Err(e) => {
                    log::warn!("skipping a policy document: {e}");
                    None
                }
            })
            .collect();
        out.sort_by(|a: &PolicyDoc, b| a.policy_id.cmp(&b.policy_id));
        Ok(out)
    }

    fn changes(
        &self,
        since: Cursor,
        now: SystemTime,
        wait: Duration,
    ) -> Result<Changes, StoreError> {
        self.feed.changes(since, now, wait)
    }

    fn follow(&self, sink: std::sync::Arc<dyn crate::backend::relay::FeedSink>) -> bool {
        self.feed.attach(sink);
        true
    }

    fn unfollow(&self) {
        self.feed.detach();
    }

    fn catch_up(&self) {
        self.feed.catch_up();
    }
}

fn update_result(item: &Item) -> Result<(), StoreError> {
    match item.status {
        200 | 201 => Ok(()),
        // `document_missing_exception`, or no `.fleet-agents` index at all: either way there is
        // no such document.
        404 => Err(StoreError::NotFound),
        s => Err(item_error(s, &item.raw)),
    }
}
