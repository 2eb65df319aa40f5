//! One OpAMP message against the store (fleet-protocol.md §8 "OpAMP"; Fleet Server's
//! `handleOpAMP.go`): authenticate the enrollment token, decode `AgentToServer`, check the
//! instance uid, enroll an unknown collector (or one asking for a new uid), mark the document it
//! replaces as re-enrolled, and compute the `ServerToAgent` answer plus the checkin-state update
//! the event loop hands to the bulk writer. Transport-independent: the loop wraps the answer in
//! an HTTP response or a WebSocket message.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::{authenticate, uuid_v4};
use crate::backend::OpError;
use crate::backend::{ApiKey, Store, StoreError};
use crate::model::time::rfc3339_seconds;
use crate::opamp::document::{checkin_state, disconnect_state, enroll_document};
use crate::opamp::proto::{
    AgentIdentification, AgentToServer, ServerErrorResponse, ServerToAgent, ERROR_BAD_REQUEST,
    ERROR_UNAVAILABLE, FLAG_REPORT_FULL_STATE, FLAG_REQUEST_INSTANCE_UID,
    SERVER_ACCEPTS_EFFECTIVE_CONFIG, SERVER_ACCEPTS_STATUS, SERVER_OFFERS_REMOTE_CONFIG,
};
use crate::opamp::remote_config::{hex, status_json, RemoteConfig};
use crate::opamp::{decode, decode_ws, uid_bytes, uid_text, uuid_v7};

/// `AgentCapabilities_AcceptsRemoteConfig`.
const ACCEPTS_REMOTE_CONFIG: u64 = 0x2;

/// Audit reason written on the document a re-enrolling collector leaves behind.
const REENROLLED: &str = "reenrolled";

/// One message from a collector.
#[derive(Debug)]
pub struct OpAmpInput {
    /// The enrollment token of the connection.
    pub key: ApiKey,
    /// Check the token first: every plain-HTTP request; a WebSocket was checked at its upgrade.
    pub authenticate: bool,
    /// The message as received (a WebSocket message still has its one-byte header).
    pub body: Vec<u8>,
    /// Whether `body` came over WebSocket.
    pub websocket: bool,
    /// Remote configurations by policy id (filled by the event loop from its policy cache).
    pub remote_configs: Vec<(String, Arc<RemoteConfig>)>,
}

/// Why a message gets no `ServerToAgent`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpAmpRefusal {
    /// Elasticsearch rate-limited the key check: HTTP 429.
    #[error("elasticsearch rate limit on opamp request")]
    AuthRateLimited,
    /// Any other authentication failure: HTTP 401.
    #[error("unauthenticated opamp request")]
    Unauthorized,
    /// Not an `AgentToServer`: HTTP 400; over WebSocket the message is dropped.
    #[error("{0}")]
    BadMessage(String),
}

/// The answer to a message.
#[derive(Debug)]
pub struct OpAmpOutcome {
    /// What to send back.
    pub reply: ServerToAgent,
    /// The agent id and its checkin-state update, when the message updates a document.
    pub checkin: Option<(String, Map<String, Value>)>,
}

/// Checks a connection's enrollment token (`OnConnecting`).
pub fn authenticate_opamp(store: &dyn Store, key: &ApiKey) -> Result<(), OpAmpRefusal> {
    match authenticate(store, key) {
        Ok(_) => Ok(()),
        Err(OpError::AuthRateLimited) => Err(OpAmpRefusal::AuthRateLimited),
        Err(_) => Err(OpAmpRefusal::Unauthorized),
    }
}

fn error_reply(uid: &[u8], kind: i32, text: &str) -> OpAmpOutcome {
    OpAmpOutcome {
        reply: ServerToAgent {
            instance_uid: uid.to_vec(),
            error_response: Some(ServerErrorResponse {
                r#type: kind,
                error_message: text.into(),
            }),
            ..Default::default()
        },
        checkin: None,
    }
}

/// Handles one message (`handleMessage`).
pub fn opamp_message(
    store: &dyn Store,
    input: &OpAmpInput,
    now: SystemTime,
) -> Result<OpAmpOutcome, OpAmpRefusal> {
    if input.authenticate {
        authenticate_opamp(store, &input.key)?;
    }
    let message = if input.websocket {
        decode_ws(&input.body)
    } else {
        decode(&input.body)
    }
    .map_err(|e| OpAmpRefusal::BadMessage(e.to_string()))?;
    let uid = message.instance_uid.as_slice();
    let Some(uid_string) = uid_text(uid) else {
        return Ok(error_reply(
            uid,
            ERROR_BAD_REQUEST,
            "failed to parse instance_uid",
        ));
    };
    let enroll_request = message.flags & FLAG_REQUEST_INSTANCE_UID != 0;
    let found = match store.agent(&uid_string) {
        Ok(found) => found,
        Err(e) => {
            log::warn!("opamp: agent search failed: {e}");
            return Ok(error_reply(uid, ERROR_UNAVAILABLE, "agent search failed"));
        }
    };
    let last_checkin = rfc3339_seconds(now);
    if message.agent_disconnect.is_some() {
        if found.is_none() || enroll_request {
            return Ok(error_reply(
                uid,
                ERROR_BAD_REQUEST,
                "agent_disconnect set on new enrollment message",
            ));
        }
        return Ok(OpAmpOutcome {
            reply: ServerToAgent {
                instance_uid: uid.to_vec(),
                ..Default::default()
            },
            checkin: Some((uid_string, disconnect_state(&last_checkin))),
        });
    }
    let (agent_id, policy_id, clear_audit, send_capabilities) = match &found {
        Some(agent) if !enroll_request => {
            let inactive = !matches!(
                agent.last_checkin_status.as_str(),
                "online" | "error" | "degraded"
            );
            if i64::try_from(message.sequence_num).ok() != agent_sequence(agent).map(|s| s + 1) {
                log::debug!(
                    "opamp {uid_string}: sequence number drift ({} after {:?})",
                    message.sequence_num,
                    agent_sequence(agent)
                );
            }
            (
                uid_string.clone(),
                agent.policy_id.clone(),
                !agent.audit_unenrolled_reason.is_empty(),
                inactive,
            )
        }
        _ => {
            let (id, policy_id) = match enroll(store, input, &message, &uid_string, now) {
                Ok(enrolled) => enrolled,
                Err(e) => {
                    log::warn!("opamp {uid_string}: failed to enroll agent: {e}");
                    return Ok(error_reply(
                        uid,
                        ERROR_UNAVAILABLE,
                        "failed to enroll agent",
                    ));
                }
            };
            if let Some(previous) = found.as_ref() {
                let reason = previous.audit_unenrolled_reason.as_str();
                if reason != "orphaned" && reason != REENROLLED {
                    mark_reenrolled(store, &uid_string, now);
                }
            }
            (id, policy_id, false, true)
        }
    };
    let mut state = match checkin_state(&message, &last_checkin, clear_audit) {
        Ok(state) => state,
        Err(e) => {
            log::warn!("opamp {uid_string}: failed to update agent: {e}");
            return Ok(error_reply(
                uid,
                ERROR_UNAVAILABLE,
                "failed to update agent",
            ));
        }
    };
    // Beyond Fleet Server: the policy's remote configuration, until the collector has it.
    let offered = input
        .remote_configs
        .iter()
        .find(|(policy, _)| *policy == policy_id)
        .map(|(_, config)| config);
    if let Some(status) = &message.remote_config_status {
        state.insert("remote_config_status".into(), status_json(status));
    }
    let known_hash = match &message.remote_config_status {
        Some(status) => Some(hex(&status.last_remote_config_hash)),
        None => found
            .as_ref()
            .filter(|_| !enroll_request)
            .and_then(|a| a.other.get("remote_config_status"))
            .and_then(|s| s.get("last_remote_config_hash"))
            .and_then(Value::as_str)
            .map(str::to_owned),
    };
    let remote_config = offered
        .filter(|_| message.capabilities & ACCEPTS_REMOTE_CONFIG != 0)
        .filter(|config| known_hash.as_deref() != Some(hex(&config.hash).as_str()))
        .map(|config| config.to_proto());
    let agent_identification = if enroll_request {
        uid_bytes(&agent_id).map(|b| AgentIdentification {
            new_instance_uid: b.to_vec(),
        })
    } else {
        None
    };
    Ok(OpAmpOutcome {
        reply: ServerToAgent {
            instance_uid: uid.to_vec(),
            flags: FLAG_REPORT_FULL_STATE,
            capabilities: match (send_capabilities || remote_config.is_some(), offered) {
                (false, _) => 0,
                (true, None) => SERVER_ACCEPTS_STATUS | SERVER_ACCEPTS_EFFECTIVE_CONFIG,
                (true, Some(_)) => {
                    SERVER_ACCEPTS_STATUS
                        | SERVER_ACCEPTS_EFFECTIVE_CONFIG
                        | SERVER_OFFERS_REMOTE_CONFIG
                }
            },
            remote_config,
            agent_identification,
            ..Default::default()
        },
        checkin: Some((agent_id, state)),
    })
}

fn agent_sequence(agent: &crate::model::Agent) -> Option<i64> {
    agent.other.get("sequence_num").and_then(Value::as_i64)
}

/// `enrollAgent`: creates the document; returns the id (a new UUIDv7 when one was requested)
/// and the policy.
fn enroll(
    store: &dyn Store,
    input: &OpAmpInput,
    message: &AgentToServer,
    uid: &str,
    now: SystemTime,
) -> Result<(String, String), String> {
    let id = if message.flags & FLAG_REQUEST_INSTANCE_UID != 0 {
        new_uid(now)
    } else {
        uid.to_owned()
    };
    let record = store
        .enrollment_key(&input.key.id)
        .map_err(|e| format!("failed to find enrollment API key: {e}"))?
        .ok_or("failed to find enrollment API key: hit count mismatch 0")?;
    let doc = enroll_document(
        &id,
        message.agent_description.as_ref(),
        &record.policy_id,
        &record.namespaces,
        &rfc3339_seconds(now),
    )
    .map_err(|e| e.to_string())?;
    store.create_agent(&doc).map_err(|e| match e {
        StoreError::Conflict => "version conflict: the document exists".to_owned(),
        e => e.to_string(),
    })?;
    Ok((id, record.policy_id))
}

fn new_uid(now: SystemTime) -> String {
    use ring::rand::SecureRandom;
    let millis = now
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    let mut random = [0u8; 10];
    if ring::rand::SystemRandom::new().fill(&mut random).is_err() {
        // Without OS randomness a v4 from the same source would fail too; fall back to it anyway
        // so the uid stays unique in practice (the timestamp still differs).
        return uuid_v4();
    }
    uid_text(&uuid_v7(millis, random)).unwrap_or_else(uuid_v4)
}

/// `unenrollAgent`: the document a collector leaves behind when it asks for a new uid.
fn mark_reenrolled(store: &dyn Store, id: &str, now: SystemTime) {
    let ts = rfc3339_seconds(now);
    let mut fields = Map::new();
    fields.insert("updated_at".into(), json!(ts));
    fields.insert("audit_unenrolled_time".into(), json!(ts));
    fields.insert("audit_unenrolled_reason".into(), json!(REENROLLED));
    // Fleet Server retries a conflict three times; the stores here apply the merge atomically.
    if let Err(e) = store.update_agent(id, &fields) {
        log::warn!("opamp {id}: failed to mark the previous doc as reenrolled: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::ops::testkit::store_with_policy;
    use prost::Message;

    fn input(key: &ApiKey, message: &AgentToServer) -> OpAmpInput {
        OpAmpInput {
            key: key.clone(),
            authenticate: true,
            body: message.encode_to_vec(),
            websocket: false,
            remote_configs: Vec::new(),
        }
    }

    fn message(uid: u8, seq: u64, flags: u64) -> AgentToServer {
        AgentToServer {
            instance_uid: vec![uid; 16],
            sequence_num: seq,
            flags,
            ..Default::default()
        }
    }

    #[test]
    fn disconnect_of_an_unknown_collector_is_a_bad_request() {
        let (store, key) = store_with_policy("p");
        let mut m = message(1, 1, 0);
        m.agent_disconnect = Some(Default::default());
        let out = opamp_message(&*store, &input(&key, &m), SystemTime::now()).unwrap();
        let err = out.reply.error_response.unwrap();
        assert_eq!(err.r#type, ERROR_BAD_REQUEST);
        assert!(out.checkin.is_none());
    }

    #[test]
    fn asking_for_a_new_uid_marks_the_old_document_reenrolled() {
        let (store, key) = store_with_policy("p");
        let now = SystemTime::now();
        let first = opamp_message(&*store, &input(&key, &message(2, 1, 0)), now).unwrap();
        assert_eq!(
            first.checkin.as_ref().unwrap().0,
            uid_text(&[2; 16]).unwrap()
        );
        let again = opamp_message(
            &*store,
            &input(&key, &message(2, 2, FLAG_REQUEST_INSTANCE_UID)),
            now,
        )
        .unwrap();
        let new_uid = again.reply.agent_identification.unwrap().new_instance_uid;
        let new_id = uid_text(&new_uid).unwrap();
        assert_ne!(new_id, uid_text(&[2; 16]).unwrap());
        assert!(store.agent(&new_id).unwrap().is_some());
        let old = store.agent(&uid_text(&[2; 16]).unwrap()).unwrap().unwrap();
        assert_eq!(old.audit_unenrolled_reason, REENROLLED);
    }

    #[test]
    fn bad_token_and_bad_protobuf_are_refused_before_any_document() {
        let (store, key) = store_with_policy("p");
        let wrong = ApiKey {
            id: key.id.clone(),
            secret: "wrong".into(),
        };
        let refused = opamp_message(
            &*store,
            &input(&wrong, &message(3, 1, 0)),
            SystemTime::now(),
        );
        assert_eq!(refused.unwrap_err(), OpAmpRefusal::Unauthorized);
        let mut bad = input(&key, &message(3, 1, 0));
        bad.body = vec![0xff; 4];
        assert!(matches!(
            opamp_message(&*store, &bad, SystemTime::now()),
            Err(OpAmpRefusal::BadMessage(_))
        ));
        assert!(store.agent(&uid_text(&[3; 16]).unwrap()).unwrap().is_none());
    }
}
