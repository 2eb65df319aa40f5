//! `POST /api/fleet/agents/{id}/audit/unenroll`, what the request means (fleet-protocol.md §8):
//! the reason, one of four, and the time, a Go `time.Time`. The refusal rides to the worker in
//! [`AuditInput::body`](crate::backend::interface::AuditInput::body), answered after the key
//! check. The store part is `backend::ops::audit`.

use serde::Deserialize;
use serde_json::Value;

use super::json_body::{decode, null_as_default, GoBody, GoField};
use crate::backend::interface::AuditRequest;
use crate::backend::OpError;
use crate::model::time::GoTime;

/// `AuditUnenrollRequest`: `reason` a string, `timestamp` a Go `time.Time` (checked below).
#[derive(Debug, Deserialize)]
struct AuditBody {
    #[serde(default, deserialize_with = "null_as_default")]
    reason: String,
    #[serde(default)]
    timestamp: Option<Value>,
}

/// Go's names for the audit body's typed members.
const AUDIT_BODY: GoBody = GoBody {
    request: "audit/unenroll",
    go_type: "api.AuditUnenrollRequest",
    fields: &[GoField::member(
        "reason",
        "AuditUnenrollRequest",
        "api.AuditUnenrollRequestReason",
    )],
};

/// `time.Time`'s `UnmarshalJSON`: absent or `null` is the zero time, a string must be RFC 3339,
/// anything else is not a JSON string. The error is part of the decode error, as in Go.
fn audit_time(value: Option<&Value>) -> Result<GoTime, OpError> {
    let cause = match value {
        None | Some(Value::Null) => return Ok(GoTime::ZERO),
        Some(Value::String(s)) => match GoTime::parse(s) {
            Ok(t) => return Ok(t),
            Err(e) => e,
        },
        Some(_) => "Time.UnmarshalJSON: input is not a JSON string".to_owned(),
    };
    Err(OpError::Invalid(format!(
        "unable to decode {} request: {cause}",
        AUDIT_BODY.request
    )))
}

/// Parses and validates an audit/unenroll body.
pub fn parse(body: &[u8]) -> Result<AuditRequest, OpError> {
    let body: AuditBody = decode(body, &AUDIT_BODY)?;
    let timestamp = audit_time(body.timestamp.as_ref())?;
    if !matches!(
        body.reason.as_str(),
        "uninstall" | "orphaned" | "key_revoked" | "migrated"
    ) {
        return Err(OpError::Invalid(
            "audit/unenroll request invalid reason".into(),
        ));
    }
    Ok(AuditRequest {
        reason: body.reason,
        timestamp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_and_time_are_checked() {
        assert_eq!(
            parse(br#"{"reason":"bored"}"#),
            Err(OpError::Invalid(
                "audit/unenroll request invalid reason".into()
            ))
        );
        assert!(matches!(
            parse(br#"{"reason":"uninstall","timestamp":3}"#),
            Err(OpError::Invalid(m)) if m.contains("Time.UnmarshalJSON")
        ));
        let ok = parse(br#"{"reason":"orphaned"}"#).unwrap();
        assert_eq!(
            (ok.reason.as_str(), ok.timestamp),
            ("orphaned", GoTime::ZERO)
        );
    }
}
