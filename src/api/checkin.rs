//! `POST /api/fleet/agents/{id}/checkin`, what the request means (fleet-protocol.md §3.1,
//! §3.10): the body's members, read the way Go reads them, a status that must be there, the
//! requested hold time and the upgrade details' rules. The refusal rides to the worker in
//! [`CheckinInput::body`](crate::backend::interface::CheckinInput::body), which answers it only
//! after the key was checked ("401 before 400"). The store part is `backend::ops::checkin`; the
//! answer-or-park decision is the event loop's.

use serde_json::{json, Value};

use super::json_body::{decode, GoBody, GoField};
use crate::backend::interface::{CheckinBody, CheckinRequest};
use crate::backend::OpError;

/// Go's names for the checkin body's typed members (`CheckinRequest`; the raw-JSON members
/// `local_metadata`, `components`, `upgrade` take any value).
const CHECKIN_BODY: GoBody = GoBody {
    request: "checkin",
    go_type: "api.CheckinRequest",
    fields: &[
        GoField::member("status", "CheckinRequest", "api.CheckinRequestStatus"),
        GoField::member("message", "CheckinRequest", "string"),
        GoField::member("ack_token", "CheckinRequest", "string"),
        GoField::member("poll_timeout", "CheckinRequest", "string"),
        GoField::member("agent_policy_id", "CheckinRequest", "string"),
        GoField::integer("policy_revision_idx", "CheckinRequest", "int64"),
    ],
};

/// Parses and validates a (decompressed) checkin body.
pub fn parse(body: &[u8]) -> Result<Box<CheckinRequest>, OpError> {
    let body: CheckinBody = decode(body, &CHECKIN_BODY)?;
    if body.status.is_empty() {
        return Err(OpError::Invalid("checkin status missing".into()));
    }
    let poll_timeout = match body.poll_timeout.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(text) => match crate::config::parse_duration(text) {
            Ok(crate::config::GoDuration::Positive(d)) => Some(d).filter(|d| !d.is_zero()),
            Ok(_) => None,
            Err(e) => return Err(OpError::Invalid(format!("poll_timeout: {e}"))),
        },
    };
    if let Some(details) = &body.upgrade_details {
        validate_upgrade_details(details)?;
    }
    Ok(Box::new(CheckinRequest { body, poll_timeout }))
}

/// §3.10 validation by state.
fn validate_upgrade_details(details: &Value) -> Result<(), OpError> {
    let state = details.get("state").and_then(Value::as_str).unwrap_or("");
    let meta = details.get("metadata");
    let has = |k: &str| {
        meta.and_then(|m| m.get(k))
            .is_some_and(|v| !v.is_null() && *v != json!("") && *v != json!(0))
    };
    match state {
        "UPG_FAILED" if !has("error_msg") => Err(OpError::Refused(
            "invalid upgrade_details: UPG_FAILED requires metadata.error_msg".into(),
        )),
        "UPG_SCHEDULED" if !has("scheduled_at") => Err(OpError::Refused(
            "invalid upgrade_details: UPG_SCHEDULED requires metadata.scheduled_at".into(),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn status_poll_timeout_and_upgrade_details_are_checked() {
        assert_eq!(
            parse(br#"{}"#),
            Err(OpError::Invalid("checkin status missing".into()))
        );
        assert!(matches!(
            parse(br#"{"status":"online","poll_timeout":"soon"}"#),
            Err(OpError::Invalid(m)) if m.starts_with("poll_timeout: ")
        ));
        let ok = parse(br#"{"status":"online","poll_timeout":"3m"}"#).unwrap();
        assert_eq!(ok.poll_timeout, Some(Duration::from_secs(180)));
        assert_eq!(ok.body.status, "online");
        assert_eq!(
            parse(br#"{"status":"online","poll_timeout":"0s"}"#)
                .unwrap()
                .poll_timeout,
            None
        );
        let failed =
            br#"{"status":"online","upgrade_details":{"state":"UPG_FAILED","metadata":{}}}"#;
        assert!(matches!(parse(failed), Err(OpError::Refused(m)) if m.contains("error_msg")));
        let scheduled = br#"{"status":"online","upgrade_details":{"state":"UPG_SCHEDULED","metadata":{"scheduled_at":"2026-01-01T00:00:00Z"}}}"#;
        assert!(parse(scheduled).is_ok());
    }
}
