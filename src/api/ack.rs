//! `POST /api/fleet/agents/{id}/acks`, what the request means (fleet-protocol.md §4.1): the
//! `events` array, each event kept as sent and read the way Go reads it
//! (`transform::ack_event`). The refusal rides to the worker in
//! [`AckInput::body`](crate::backend::interface::AckInput::body), answered after the key check.
//! The store part (results, policy acks, unenroll) is `backend::ops::ack`.

use serde::Deserialize;

use super::json_body::{decode, null_as_default, GoBody, GoField};
use crate::backend::OpError;
use crate::transform::ack_event::RawEvent;

/// `AckRequest`: `events` may be absent or `null` (no events).
#[derive(Debug, Deserialize)]
struct AckBody {
    #[serde(default, deserialize_with = "null_as_default")]
    events: Vec<RawEvent>,
}

/// Go's names for the ack body's typed members (`events` must be an array).
const ACK_BODY: GoBody = GoBody {
    request: "ack",
    go_type: "api.AckRequest",
    fields: &[GoField::member(
        "events",
        "AckRequest",
        "[]api.AckRequest_Events_Item",
    )],
};

/// Parses a (decompressed) ack body into its events.
pub fn parse(body: &[u8]) -> Result<Vec<RawEvent>, OpError> {
    decode::<AckBody>(body, &ACK_BODY).map(|body| body.events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_may_be_null_or_absent_but_must_be_an_array() {
        assert_eq!(parse(br#"{"events":null}"#), Ok(Vec::new()));
        assert_eq!(parse(b"{}"), Ok(Vec::new()));
        assert_eq!(
            parse(br#"{"events":[{"action_id":"a"},3]}"#).unwrap().len(),
            2
        );
        assert!(matches!(
            parse(br#"{"events":{}}"#),
            Err(OpError::Invalid(_))
        ));
    }
}
