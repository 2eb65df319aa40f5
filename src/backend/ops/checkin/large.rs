//! Large checkin bodies (issue 15 §3): a checkin's gzip body is gunzipped and parsed on the
//! worker that runs its store part (`api::checkin::parse_gzip`, carried in the input: the
//! decoder leaves it compressed, so requests waiting for a worker hold about 19 KB, not 19 MiB),
//! the plain bytes dropped once parsed; a large `message` is moved (never copied) into the
//! checkin state, which is written at once here instead of waiting in the bulk writer. So a checkin holds at most two copies of its message (the
//! plain body and the parsed message; then the message and the bulk request it is serialised
//! into), and nothing of it outlives its job.

use crate::backend::{CheckinWrite, Store};

/// A checkin `message` longer than this (Elastic allows up to the 20 MiB body) is written by the
/// checkin's own job instead of waiting in the bulk writer (issue 15 §3).
pub const LARGE_MESSAGE: usize = 1024 * 1024;

/// Writes the state of a checkin with a large message at once, so that the message is not held
/// for the next bulk flush (twenty agents' 19 MiB messages would be 380 MiB there). What the
/// bulk writer then gets is the rest of the state: written again with the next flush, without
/// the message. If this write fails, the whole state goes to the writer as usual.
pub(super) fn write_large_state(
    store: &dyn Store,
    agent_id: &str,
    state: CheckinWrite,
) -> CheckinWrite {
    let entry = [(agent_id.to_owned(), state)];
    let written = match store.update_agents(&entry) {
        Ok(results) => results.into_iter().all(|r| r.is_ok()),
        Err(e) => {
            log::debug!("agent {agent_id}: writing its large checkin state failed ({e}); the bulk writer keeps it");
            false
        }
    };
    let [(_, mut state)] = entry;
    if written {
        state.fields.remove("last_checkin_message");
    }
    state
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::SystemTime;

    use serde_json::{json, Value};

    use super::super::tests::enrolled;
    use super::super::{checkin_start, CheckinInput};
    use super::*;
    use crate::backend::interface::DeferredBody;
    use crate::backend::ops::testkit::remotes;
    use crate::backend::OpError;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    /// A checkin whose gzip body the worker gunzips and parses.
    fn gz_input(key: &crate::backend::ApiKey, agent: &str, body: &Value) -> CheckinInput {
        CheckinInput {
            key: key.clone(),
            agent_id: agent.into(),
            agent_version: Ok("9.2.1".into()),
            body: Err(OpError::Invalid("not read".into())),
            deferred: Some(Box::new(DeferredBody {
                gzip: gzip(&serde_json::to_vec(body).unwrap()),
                parse: crate::api::checkin::parse_gzip,
            })),
        }
    }

    #[test]
    fn a_large_message_is_written_by_the_checkin_itself_and_not_held() {
        let (store, key, id) = enrolled();
        let message = "m".repeat(LARGE_MESSAGE + 1);
        let body = json!({"status": "online", "message": message});
        let start = checkin_start(
            &*store,
            &remotes(),
            &gz_input(&key, &id, &body),
            SystemTime::now(),
        )
        .unwrap();
        // Stored already; neither the state for the bulk writer nor the parked agent's refresh
        // members hold it, and the parsed body gave it away.
        let stored = store.agent(&id).unwrap().unwrap();
        assert_eq!(stored.last_checkin_message.len(), message.len());
        assert!(!start.state.fields.contains_key("last_checkin_message"));
        assert_eq!(start.state.fields["last_checkin_status"], "online");
        assert!(!start.repeat.contains_key("last_checkin_message"));
        assert!(start.repeat.contains_key("last_checkin_status"));
        assert!(start.body.message.is_empty());
        // A message under the limit takes the usual way: in the state, nothing written yet.
        let small = json!({"status": "online", "message": "short"});
        let start = checkin_start(
            &*store,
            &remotes(),
            &gz_input(&key, &id, &small),
            SystemTime::now(),
        )
        .unwrap();
        assert_eq!(
            start.state.fields["last_checkin_message"],
            Value::from("short")
        );
        assert_eq!(start.repeat["last_checkin_message"], Value::from("short"));
        assert_eq!(
            store
                .agent(&id)
                .unwrap()
                .unwrap()
                .last_checkin_message
                .len(),
            message.len()
        );
    }

    #[test]
    fn a_deferred_body_is_refused_after_the_key() {
        let (store, key, id) = enrolled();
        let mut input = gz_input(&key, &id, &json!({"status": "online"}));
        if let Some(deferred) = input.deferred.as_mut() {
            deferred.gzip = b"not gzip".to_vec();
        }
        assert!(matches!(
            checkin_start(&*store, &remotes(), &input, SystemTime::now()),
            Err(OpError::Invalid(m)) if m == "unable to decompress request body: gzip: invalid gzip data"
        ));
        let wrong_key = crate::backend::ApiKey {
            id: key.id.clone(),
            secret: "wrong".into(),
        };
        input.key = wrong_key;
        assert!(matches!(
            checkin_start(&*store, &remotes(), &input, SystemTime::now()),
            Err(OpError::Unauthorized(_))
        ));
    }
}
