//! `POST /api/fleet/agents/enroll`, what the request means (fleet-protocol.md §2.2): the body's
//! members read the way Go reads them, and the enroll type. The refusal rides to the worker in
//! [`EnrollInput::body`](crate::backend::interface::EnrollInput::body), answered after the key
//! check and the enrollment record lookup, as Fleet Server orders them. The store part is
//! `backend::ops::enroll`.

use serde::Deserialize;
use serde_json::Value;

use super::json_body::{decode, null_as_default, null_strings, GoBody, GoField};
use crate::backend::interface::EnrollRequest;
use crate::backend::OpError;

#[derive(Debug, Default, Deserialize)]
struct Metadata {
    #[serde(default)]
    local: Option<Value>,
    #[serde(default, deserialize_with = "null_strings")]
    tags: Vec<String>,
}

/// `EnrollRequest`: a missing or `null` `type` is `""`, which Go refuses as an unknown type
/// (500), not as a decode error.
#[derive(Debug, Deserialize)]
struct EnrollBody {
    #[serde(rename = "type", default, deserialize_with = "null_as_default")]
    enroll_type: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    replace_token: Option<String>,
    #[serde(default)]
    enrollment_id: Option<String>,
    #[serde(default)]
    metadata: Option<Metadata>,
    /// Deprecated and ignored, but typed in Go (a wrong type is a decode error there too).
    #[serde(default, rename = "shared_id")]
    _shared_id: Option<String>,
}

/// Go's names for the enroll body's typed members (`metadata.local` and
/// `metadata.user_provided` are raw JSON and take any value).
const ENROLL_BODY: GoBody = GoBody {
    request: "enroll",
    go_type: "api.EnrollRequest",
    fields: &[
        GoField::member("type", "EnrollRequest", "api.EnrollRequestType"),
        GoField::member("id", "EnrollRequest", "string"),
        GoField::member("replace_token", "EnrollRequest", "string"),
        GoField::member("enrollment_id", "EnrollRequest", "string"),
        GoField::member("shared_id", "EnrollRequest", "string"),
        GoField::member("metadata", "EnrollRequest", "api.EnrollMetadata"),
        GoField::member("metadata.tags", "EnrollMetadata", "[]string"),
        GoField::elements("metadata.tags", "EnrollMetadata", "string"),
    ],
};

/// Parses and validates a (decompressed) enroll body.
pub fn parse(body: &[u8]) -> Result<Box<EnrollRequest>, OpError> {
    let body: EnrollBody = decode(body, &ENROLL_BODY)?;
    if !matches!(
        body.enroll_type.as_str(),
        "PERMANENT" | "EPHEMERAL" | "TEMPORARY"
    ) {
        return Err(OpError::Refused("unknown enroll request type".into()));
    }
    let metadata = body.metadata.unwrap_or_default();
    let mut tags = metadata.tags;
    tags.sort();
    tags.dedup();
    Ok(Box::new(EnrollRequest {
        enroll_type: body.enroll_type,
        id: body.id,
        replace_token: body.replace_token,
        enrollment_id: body.enrollment_id,
        local_metadata: metadata.local,
        tags,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_is_required_and_tags_are_a_set() {
        assert_eq!(
            parse(br#"{"type":null}"#),
            Err(OpError::Refused("unknown enroll request type".into()))
        );
        let ok = parse(
            br#"{"type":"PERMANENT","metadata":{"tags":["b",null,"a","b"],"local":{"x":1}}}"#,
        )
        .unwrap();
        assert_eq!(ok.tags, ["", "a", "b"]);
        assert_eq!(ok.local_metadata, Some(serde_json::json!({"x": 1})));
        assert!(matches!(parse(b"[]"), Err(OpError::Invalid(_))));
    }
}
