//! The error table of fleet-protocol.md §1.7 in one place: every error an endpoint can answer
//! with, and its status code, `error` and `message` on the wire. Handlers return `ApiError`;
//! only `to_response` turns one into bytes (through `http::error_response`). A backend
//! operation's [`OpError`] becomes an `ApiError` here and nowhere else.

use crate::backend::{FileRefusal, OpError, Why};
use crate::http::{error_response, Response};

/// An error an endpoint answers with. Variants are named after the spec's `error` strings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// §1.7 #1.
    #[error("agent could not be found")]
    AgentNotFound,
    /// §1.7 #2: the API key is cached or reported as disabled.
    #[error("ApiKey not enabled")]
    ApiKeyNotEnabled,
    /// §1.7 #3: the request was cancelled by shutdown or by the client going away.
    #[error("server is stopping")]
    ClientClosedRequest,
    /// §1.7 #4.
    #[error("existing agent cannot be replaced")]
    AgentNotReplaceable,
    /// §1.7 #5.
    #[error("user-agent is invalid")]
    InvalidUserAgent,
    /// §1.7 #6.
    #[error("version is not supported")]
    UnsupportedVersion,
    /// §1.7 #11.
    #[error("exceeded the rate limit")]
    RateLimit,
    /// §1.7 #12.
    #[error("exceeded the max limit")]
    MaxLimit,
    /// §1.7 #13.
    #[error("exceeded the elasticsearch api key auth limit")]
    ElasticsearchApiKeyAuthLimit,
    /// §1.7 #15.
    #[error("concurrent enrollment for same id: retry")]
    EnrollDuplicate,
    /// §1.7 #16.
    #[error("timeout on request")]
    RequestTimeout,
    /// §1.7 #17.
    #[error("Agent not active")]
    UpdatingInactiveAgent,
    /// §1.7 #19.
    #[error("Agent header contains wrong identifier")]
    AgentIdentity,
    /// §1.7 #20.
    #[error("Agent record corrupted")]
    AgentCorrupted,
    /// §1.7 #21.
    #[error("Agent inactive")]
    AgentInactive,
    /// §1.7 #26.
    #[error("no authorization header")]
    NoAuthHeader,
    /// §1.7 #27.
    #[error("malformed authorization header")]
    MalformedHeader,
    /// §1.7 #28.
    #[error("unauthorized")]
    Unauthorized,
    /// §1.7 #29.
    #[error("malformed token")]
    MalformedToken,
    /// §1.7 #30.
    #[error("token not valid utf8")]
    InvalidToken,
    /// §1.7 #31.
    #[error("api key not found")]
    ApiKeyNotFound,
    /// §1.7 #46; carries the received value.
    #[error("received \"{0}\", expected a valid date string formatted as YYYY-MM-DD. invalid version format")]
    InvalidApiVersionFormat(String),
    /// §1.7 #47; carries the received value.
    #[error("received \"{0}\", is not supported. supported versions are: [2023-06-01] version is not supported")]
    UnsupportedApiVersion(String),
    /// §1.7 #55.
    #[error("agent document contains audit_unenroll_reason")]
    AuditReasonConflict,
    /// §1.7 #18: upload complete without `transithash.sha256`.
    #[error("Transit hash required")]
    TransitHashRequired,
    /// §1.7 #23: upload begin with an empty body.
    #[error("file info body is required")]
    FileInfoBodyRequired,
    /// §1.7 #24: upload begin without `agent_id`.
    #[error("required field agent_id is missing")]
    AgentIdMissing,
    /// §1.7 #33.
    #[error("this file exceeds the maximum allowed file size")]
    FileSizeTooLarge,
    /// §1.7 #34: `max_file_storage_size: 0`.
    #[error("File Transfer is disabled in Fleet Server configuration")]
    FileFeatureDisabled,
    /// §1.7 #35.
    #[error("file data incomplete, not all chunks were uploaded")]
    MissingChunks,
    /// §1.7 #36.
    #[error("hash does not match")]
    HashMismatch,
    /// §1.7 #37.
    #[error("upload has expired")]
    UploadExpired,
    /// §1.7 #38.
    #[error("upload has stopped")]
    UploadStopped,
    /// §1.7 #39.
    #[error("invalid chunk number")]
    InvalidChunkNum,
    /// §1.7 #40.
    #[error("file contents failed validation")]
    FailValidation,
    /// §1.7 #41.
    #[error("file closed, not accepting uploads")]
    StatusNoUploads,
    /// §1.7 #42.
    #[error("upload start payload required")]
    PayloadRequired,
    /// §1.7 #43.
    #[error("file.size is required")]
    FileSizeRequired,
    /// §1.7 #44; carries the error text (`file.size: 0: invalid filesize`).
    #[error("{0}")]
    InvalidFileSize(String),
    /// §1.7 #45; carries the error text (`file.name is required: field required`).
    #[error("{0}")]
    FieldRequired(String),
    /// §1.7 #51: an upload id (or file id) that matches no metadata document (Go's
    /// `file.ErrInvalidID`; row #32's `ErrInvalidUploadID` is declared but never returned).
    #[error("ErrInvalidID")]
    InvalidFileId,
    /// §1.7 #48: a file for delivery has no chunks (or no metadata for this agent).
    #[error("file not found")]
    NoFile,
    /// §1.7 #49: a `Range` that cannot be served.
    #[error("range not satisfiable")]
    RangeNotSatisfiable,
    /// §1.7 #50: several ranges in one `Range`.
    #[error("Multipart ranges not satisfiable")]
    MultipartRange,
    /// §1.7 #52: a library file asked for by a client that is not allow-listed.
    #[error("client forbidden")]
    ClientFileForbidden,
    /// §1.7 #53: the file for delivery could not be looked up.
    #[error("file not found")]
    FileForDeliveryNotFound,
    /// §1.7 #56: an upload begin or complete body over its route's cap.
    #[error("the request body exceeds the maximum allowed size")]
    PayloadSizeTooLarge,
    /// Request validation (bad JSON, missing fields): `Bad request: <what>`.
    #[error("Bad request: {0}")]
    BadRequest(String),
    /// The store answered with an error status (`elastic fail <status>...`).
    #[error("elasticsearch error")]
    StoreFailed(String),
    /// The store could not be reached at all.
    #[error("Fleet server unable to communicate with Elasticsearch")]
    StoreUnavailable,
    /// Anything else (the Go server's default mapping): 500 with error `BadRequest` and the error
    /// text as message, e.g. `unknown enroll request type`.
    #[error("{0}")]
    Internal(String),
    /// Rows 8–9: an Endpoint artifact the agent's policy does not list, or no policy.
    #[error("{0}")]
    Forbidden(String),
    /// Row 7: generic not found (an Endpoint artifact).
    #[error("not found")]
    NotFound,
    /// Row 10: the artifact fetch throttle.
    #[error("too many requests")]
    TooManyRequests,
}

impl ApiError {
    /// HTTP status, `error` and `message` of this error on the wire.
    pub fn wire(&self) -> (u16, String) {
        use ApiError::*;
        let (status, error): (u16, &str) = match self {
            AgentNotFound => (404, "AgentNotFound"),
            ApiKeyNotEnabled => (401, "Unauthorized"),
            ClientClosedRequest => (499, "StatusClientClosedRequest"),
            AgentNotReplaceable => (403, "AgentNotReplaceable"),
            InvalidUserAgent => (400, "InvalidUserAgent"),
            UnsupportedVersion => (400, "UnsupportedVersion"),
            RateLimit => (429, "RateLimit"),
            MaxLimit => (429, "MaxLimit"),
            ElasticsearchApiKeyAuthLimit => (429, "ElasticsearchAPIKeyAuthLimit"),
            EnrollDuplicate => (429, "EnrollDuplicate"),
            RequestTimeout => (408, "RequestTimeout"),
            UpdatingInactiveAgent => (401, "Unauthorized"),
            AgentIdentity => (403, "ErrAgentIdentity"),
            AgentCorrupted => (400, "ErrAgentCorrupted"),
            AgentInactive => (401, "ErrAgentInactive"),
            NoAuthHeader => (401, "ErrNoAuthHeader"),
            MalformedHeader => (400, "ErrMalformedHeader"),
            Unauthorized => (401, "ErrUnauthorized"),
            MalformedToken => (400, "ErrMalformedToken"),
            InvalidToken => (401, "ErrInvalidToken"),
            ApiKeyNotFound => (401, "ErrAPIKeyNotFound"),
            InvalidApiVersionFormat(_) => (400, "ErrInvalidAPIVersionFormat"),
            UnsupportedApiVersion(_) => (400, "ErrUnsupportedAPIVersion"),
            AuditReasonConflict => (409, "ErrAuditReasonConflict"),
            TransitHashRequired => (400, "TransitHashRequired"),
            FileInfoBodyRequired => (400, "ErrFileInfoBodyRequired"),
            AgentIdMissing => (400, "ErrAgentIDMissing"),
            FileSizeTooLarge => (400, "ErrFileSizeTooLarge"),
            FileFeatureDisabled => (403, "ErrFileFeatureDisable"),
            MissingChunks => (400, "ErrMissingChunks"),
            HashMismatch => (400, "ErrHashMismatch"),
            UploadExpired => (400, "ErrUploadExpired"),
            UploadStopped => (400, "ErrUploadStopped"),
            InvalidChunkNum => (400, "ErrInvalidChunkNum"),
            FailValidation => (400, "ErrFailValidation"),
            StatusNoUploads => (400, "ErrStatusNoUploads"),
            PayloadRequired => (400, "ErrPayloadRequired"),
            FileSizeRequired => (400, "ErrFileSizeRequired"),
            InvalidFileSize(_) => (400, "ErrInvalidFileSize"),
            FieldRequired(_) => (400, "ErrFieldRequired"),
            InvalidFileId => (400, "ErrInvalidFileID"),
            NoFile => (404, "ErrNoFile"),
            RangeNotSatisfiable | MultipartRange => (416, "ErrRangeNotSatisfiable"),
            ClientFileForbidden => (403, "ErrClientFileForbidden"),
            FileForDeliveryNotFound => (404, "ErrFileForDeliveryNotFound"),
            PayloadSizeTooLarge => (413, "ErrPayloadSizeTooLarge"),
            BadRequest(_) => (400, "BadRequest"),
            StoreFailed(detail) => return (503, detail.clone()),
            StoreUnavailable => (503, "ServiceUnavailable"),
            Internal(_) => (500, "BadRequest"),
            Forbidden(_) => (403, "Forbidden"),
            NotFound => (404, "NotFound"),
            TooManyRequests => (429, "TooManyRequests"),
        };
        (status, error.to_owned())
    }

    /// The complete error response: status and the spec's JSON body.
    pub fn to_response(&self) -> Response {
        let (status, error) = self.wire();
        error_response(status, &error, &self.to_string())
    }
}

/// Which answer a backend operation's failure gets (fleet-protocol.md §1.7): the only mapping
/// from [`OpError`] to the wire.
impl From<&OpError> for ApiError {
    fn from(err: &OpError) -> Self {
        match err {
            OpError::Unauthorized(Why::KeyDisabled) => ApiError::ApiKeyNotEnabled,
            OpError::Unauthorized(Why::KeyUnknown) => ApiError::Unauthorized,
            OpError::AuthRateLimited => ApiError::ElasticsearchApiKeyAuthLimit,
            OpError::AgentInactive => ApiError::AgentInactive,
            OpError::AgentNotFound => ApiError::AgentNotFound,
            OpError::AgentIdentity => ApiError::AgentIdentity,
            OpError::AgentCorrupted => ApiError::AgentCorrupted,
            OpError::NotReplaceable => ApiError::AgentNotReplaceable,
            OpError::AuditConflict => ApiError::AuditReasonConflict,
            OpError::Unavailable => ApiError::StoreUnavailable,
            OpError::Overloaded => ApiError::StoreFailed("elastic fail 429".into()),
            OpError::StoreFailed { status, detail } => {
                ApiError::StoreFailed(format!("elastic fail {status}: {detail}"))
            }
            OpError::Invalid(what) => ApiError::BadRequest(what.clone()),
            OpError::Refused(why) => ApiError::Internal(why.clone()),
            OpError::Forbidden(why) => ApiError::Forbidden(why.clone()),
            OpError::NotFound => ApiError::NotFound,
            OpError::Throttled => ApiError::TooManyRequests,
            OpError::InvalidUserAgent => ApiError::InvalidUserAgent,
            OpError::UnsupportedVersion => ApiError::UnsupportedVersion,
            OpError::File(f) => file_refusal(f),
        }
    }
}

fn file_refusal(f: &FileRefusal) -> ApiError {
    match f {
        FileRefusal::TransitHashRequired => ApiError::TransitHashRequired,
        FileRefusal::FileInfoBodyRequired => ApiError::FileInfoBodyRequired,
        FileRefusal::AgentIdMissing => ApiError::AgentIdMissing,
        FileRefusal::FileSizeTooLarge => ApiError::FileSizeTooLarge,
        FileRefusal::FileFeatureDisabled => ApiError::FileFeatureDisabled,
        FileRefusal::MissingChunks => ApiError::MissingChunks,
        FileRefusal::HashMismatch => ApiError::HashMismatch,
        FileRefusal::UploadExpired => ApiError::UploadExpired,
        FileRefusal::UploadStopped => ApiError::UploadStopped,
        FileRefusal::InvalidChunkNum => ApiError::InvalidChunkNum,
        FileRefusal::FailValidation => ApiError::FailValidation,
        FileRefusal::StatusNoUploads => ApiError::StatusNoUploads,
        FileRefusal::PayloadRequired => ApiError::PayloadRequired,
        FileRefusal::FileSizeRequired => ApiError::FileSizeRequired,
        FileRefusal::InvalidFileSize(t) => ApiError::InvalidFileSize(t.clone()),
        FileRefusal::FieldRequired(t) => ApiError::FieldRequired(t.clone()),
        FileRefusal::InvalidFileId => ApiError::InvalidFileId,
        FileRefusal::PayloadSizeTooLarge => ApiError::PayloadSizeTooLarge,
        FileRefusal::NoFile => ApiError::NoFile,
        FileRefusal::RangeNotSatisfiable => ApiError::RangeNotSatisfiable,
        FileRefusal::MultipartRange => ApiError::MultipartRange,
        FileRefusal::ClientFileForbidden => ApiError::ClientFileForbidden,
        FileRefusal::FileForDeliveryNotFound => ApiError::FileForDeliveryNotFound,
    }
}

impl From<OpError> for ApiError {
    fn from(err: OpError) -> Self {
        ApiError::from(&err)
    }
}

/// The response for an error, with `Retry-After` on 503s: the store is unavailable for now and
/// a client should come back rather than treat it as final.
pub fn respond(err: &ApiError) -> Response {
    let response = err.to_response();
    if response.status == 503 {
        response.with_header("Retry-After", "5")
    } else {
        response
    }
}

/// Shortest and longest `Retry-After` of a 503, seconds.
const RETRY_AFTER_SECS: (u64, u64) = (5, 15);

/// Spreads the `Retry-After` of a 503 over 5–15 s by `unit` (uniform in `[0, 1)`), so clients
/// refused together during an outage do not all come back in the same second.
pub fn jitter_retry_after(response: &mut Response, unit: f64) {
    if response.status != 503 {
        return;
    }
    let (low, high) = RETRY_AFTER_SECS;
    let secs = low + ((high - low + 1) as f64 * unit.clamp(0.0, 1.0)) as u64;
    for (name, value) in &mut response.headers {
        if name.eq_ignore_ascii_case("retry-after") {
            *value = secs.min(high).to_string();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_of_503s_is_spread() {
        let jittered = |err, unit| {
            let mut r = respond(&err);
            jitter_retry_after(&mut r, unit);
            r
        };
        let seconds = |unit| {
            let r = jittered(ApiError::StoreUnavailable, unit);
            r.header("retry-after").unwrap().parse::<u64>().unwrap()
        };
        assert_eq!(seconds(0.0), 5);
        assert_eq!(seconds(0.5), 10);
        assert_eq!(seconds(0.9999), 15);
        assert_eq!(
            jittered(ApiError::RateLimit, 0.5).header("retry-after"),
            None,
            "only 503s"
        );
    }

    fn body(e: ApiError) -> (u16, serde_json::Value) {
        let r = e.to_response();
        (r.status, serde_json::from_slice(r.body_bytes()).unwrap())
    }

    #[test]
    fn table_rows_render_as_the_spec_says() {
        let (s, b) = body(ApiError::NoAuthHeader);
        assert_eq!(s, 401);
        assert_eq!(
            b,
            serde_json::json!({"statusCode":401,"error":"ErrNoAuthHeader","message":"no authorization header"})
        );
        let (s, b) = body(ApiError::RateLimit);
        assert_eq!(
            (s, b),
            (
                429,
                serde_json::json!({"statusCode":429,"error":"RateLimit","message":"exceeded the rate limit"})
            )
        );
        let (s, b) = body(ApiError::ApiKeyNotEnabled);
        assert_eq!(
            (s, &b["error"], &b["message"]),
            (401, &"Unauthorized".into(), &"ApiKey not enabled".into())
        );
    }

    #[test]
    fn store_failure_carries_its_detail_as_error() {
        let (s, b) = body(ApiError::StoreFailed("elastic fail 500".into()));
        assert_eq!(s, 503);
        assert_eq!(b["error"], "elastic fail 500");
        assert_eq!(b["message"], "elasticsearch error");
    }

    /// The rows the store's failures take (fleet-protocol.md §1.7, last rows), as
    /// `backend::ops::store_error` answered them before operations spoke `OpError`.
    #[test]
    fn store_failures_answer_as_before() {
        use crate::backend::StoreError;
        let wire = |e: StoreError| body(ApiError::from(OpError::from(e)));
        assert_eq!(
            wire(StoreError::Unavailable("down".into())),
            body(ApiError::StoreUnavailable)
        );
        let (s, b) = wire(StoreError::Failed {
            status: 500,
            detail: "boom".into(),
        });
        assert_eq!((s, &b["error"]), (503, &"elastic fail 500: boom".into()));
        assert_eq!(
            wire(StoreError::TooManyRequests).1["error"],
            "elastic fail 429"
        );
        let (s, b) = wire(StoreError::Conflict);
        assert_eq!((s, &b["message"]), (500, &"version conflict".into()));
        assert_eq!(wire(StoreError::NotFound).1["message"], "document missing");
        let (s, b) = body(ApiError::from(OpError::Unauthorized(Why::KeyDisabled)));
        assert_eq!((s, &b["message"]), (401, &"ApiKey not enabled".into()));
    }

    #[test]
    fn error_responses_are_json_with_nosniff() {
        let r = ApiError::MalformedToken.to_response();
        assert_eq!(
            r.header("content-type"),
            Some("application/json; charset=utf-8")
        );
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    }
}
