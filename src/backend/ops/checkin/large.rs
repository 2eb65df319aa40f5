//! Large checkin bodies (issue 15 §3): a checkin's gzip body is gunzipped here, on the worker
//! that runs its store part (the decoder leaves it compressed: requests waiting for a worker
//! hold about 19 KB, not 19 MiB), and parsed, the plain bytes dropped once parsed; a large
//! `message` is moved (never copied) into the checkin state, which is written at once instead
//! of waiting in the bulk writer. So a checkin holds at most two copies of its message (the
//! plain body and the parsed message; then the message and the bulk request it is serialised
//! into), and nothing of it outlives its job.

use super::{CheckinBody, CheckinInput, CHECKIN_BODY};
use crate::api::json_body::decode;
use crate::api::ApiError;
use crate::backend::{CheckinWrite, Store};

/// A checkin `message` longer than this (Elastic allows up to the 20 MiB body) is written by the
/// checkin's own job instead of waiting in the bulk writer (issue 15 §3).
pub const LARGE_MESSAGE: usize = 1024 * 1024;

/// The checkin body, gunzipped here when the decoder left it compressed. The plain bytes are
/// dropped once parsed: a checkin holds at most its plain body and its parsed members at once.
pub(super) fn read_body(input: &CheckinInput) -> Result<CheckinBody, ApiError> {
    let Some(cap) = input.gzip_cap.filter(|_| !input.body.is_empty()) else {
        return decode(&input.body, &CHECKIN_BODY);
    };
    // Worded as the decoder words the same failures (`http::HttpError`).
    let plain = crate::http::gunzip_capped(&input.body, cap).map_err(|e| {
        let cause = match e {
            crate::http::HttpError::DecompressedTooLarge => "http: request body too large",
            _ => "gzip: invalid gzip data",
        };
        ApiError::BadRequest(format!("unable to decompress request body: {cause}"))
    })?;
    decode(&plain, &CHECKIN_BODY)
}

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
    use crate::backend::ops::testkit::remotes;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn gz_input(
        key: &crate::backend::ApiKey,
        agent: &str,
        body: Vec<u8>,
        cap: usize,
    ) -> CheckinInput {
        CheckinInput {
            key: key.clone(),
            agent_id: agent.into(),
            agent_version: Ok("9.2.1".into()),
            body,
            gzip_cap: Some(cap),
        }
    }

    #[test]
    fn a_gzip_body_is_gunzipped_by_the_store_part_with_the_decoders_wording() {
        let (store, key, id) = enrolled();
        let body = gzip(br#"{"status":"online","message":"Running"}"#);
        let start = checkin_start(
            &*store,
            &remotes(),
            &gz_input(&key, &id, body.clone(), 1 << 20),
            SystemTime::now(),
        )
        .unwrap();
        assert_eq!(start.state.fields["last_checkin_message"], "Running");
        assert_eq!(
            checkin_start(
                &*store,
                &remotes(),
                &gz_input(&key, &id, body, 8),
                SystemTime::now()
            )
            .map(drop),
            Err(ApiError::BadRequest(
                "unable to decompress request body: http: request body too large".into()
            ))
        );
        assert_eq!(
            checkin_start(
                &*store,
                &remotes(),
                &gz_input(&key, &id, b"{}".to_vec(), 1 << 20),
                SystemTime::now()
            )
            .map(drop),
            Err(ApiError::BadRequest(
                "unable to decompress request body: gzip: invalid gzip data".into()
            ))
        );
        // The same words as the decoder's own 400 for these bodies.
        assert_eq!(
            ApiError::BadRequest(
                "unable to decompress request body: gzip: invalid gzip data".into()
            )
            .to_response()
            .body_bytes(),
            crate::http::HttpError::BadGzip.to_response().body_bytes()
        );
        assert_eq!(
            ApiError::BadRequest(
                "unable to decompress request body: http: request body too large".into()
            )
            .to_response()
            .body_bytes(),
            crate::http::HttpError::DecompressedTooLarge
                .to_response()
                .body_bytes()
        );
    }

    #[test]
    fn a_large_message_is_written_by_the_checkin_itself_and_not_held() {
        let (store, key, id) = enrolled();
        let message = "m".repeat(LARGE_MESSAGE + 1);
        let body = serde_json::to_vec(&json!({"status": "online", "message": message})).unwrap();
        let start = checkin_start(
            &*store,
            &remotes(),
            &gz_input(&key, &id, gzip(&body), 20 << 20),
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
        let small = serde_json::to_vec(&json!({"status": "online", "message": "short"})).unwrap();
        let start = checkin_start(
            &*store,
            &remotes(),
            &gz_input(&key, &id, gzip(&small), 1 << 20),
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
}
