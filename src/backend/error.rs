//! [`OpError`]: why a backend operation (`ops`) refused or failed, named for what the caller does
//! about it. The backend speaks only this type; `api::errors` holds the one mapping to the wire
//! (`impl From<&OpError> for ApiError`), the shape of rustls' `TryFrom<&Error> for
//! AlertDescription`.

use super::StoreError;

/// Why a presented API key was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// The key exists but is disabled (invalidated, or cached as such).
    KeyDisabled,
    /// The store does not know the key, or the secret does not match.
    KeyUnknown,
}

/// How an operation ended when it did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    /// The key was not accepted: answer 401.
    #[error("key not accepted ({0:?})")]
    Unauthorized(Why),
    /// The store refused to check more keys for now: answer 429.
    #[error("the store's API-key checks are rate limited")]
    AuthRateLimited,
    /// The key belongs to an agent that is no longer active: answer 401, the agent stops.
    #[error("agent inactive")]
    AgentInactive,
    /// The agent of the path does not exist.
    #[error("agent not found")]
    AgentNotFound,
    /// The key belongs to another agent than the path names.
    #[error("key of another agent")]
    AgentIdentity,
    /// The agent document has no `agent` member.
    #[error("agent record corrupted")]
    AgentCorrupted,
    /// An enroll asked to replace an active agent without the right token.
    #[error("existing agent cannot be replaced")]
    NotReplaceable,
    /// An audit conflicts with the reason already recorded.
    #[error("audit reason conflicts with the recorded one")]
    AuditConflict,
    /// The store cannot be reached: answer 503 and let the caller retry.
    #[error("store unavailable")]
    Unavailable,
    /// The store is over its rate: answer 503 and let the caller retry.
    #[error("store overloaded")]
    Overloaded,
    /// The store answered with an error status.
    #[error("elastic fail {status}: {detail}")]
    StoreFailed {
        /// The store's HTTP status.
        status: u16,
        /// Error type and reason.
        detail: String,
    },
    /// The request body is invalid (the endpoint's parse decided, the key was checked first).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The request cannot be processed as sent (Fleet Server answers these 500).
    #[error("{0}")]
    Refused(String),
    /// The caller may not have what it asked for (an artifact its policy does not list): 403.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// What was asked for does not exist (an artifact the store lacks): 404.
    #[error("not found")]
    NotFound,
    /// Too many fetches of this kind at once (the artifact throttle): 429.
    #[error("too many requests")]
    Throttled,
    /// The User-Agent is missing or malformed.
    #[error("invalid user agent")]
    InvalidUserAgent,
    /// The agent's version is newer than this server admits.
    #[error("unsupported agent version")]
    UnsupportedVersion,
    /// A file-transfer refusal (uploads, file delivery): the spec's row, named.
    #[error("file transfer refused: {0:?}")]
    File(FileRefusal),
}

/// The file-transfer rows of the error table (fleet-protocol.md §1.7 #18–56), named as Fleet
/// Server's errors; `api/errors.rs` words them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileRefusal {
    /// `ErrTransitHashRequired`.
    TransitHashRequired,
    /// `ErrFileInfoBodyRequired`.
    FileInfoBodyRequired,
    /// `ErrAgentIDMissing`.
    AgentIdMissing,
    /// `ErrFileSizeTooLarge`.
    FileSizeTooLarge,
    /// `ErrFeatureDisabled`.
    FileFeatureDisabled,
    /// `ErrMissingChunks`.
    MissingChunks,
    /// `ErrHashMismatch`.
    HashMismatch,
    /// `ErrUploadExpired`.
    UploadExpired,
    /// `ErrUploadStopped`.
    UploadStopped,
    /// `ErrInvalidChunkNum`.
    InvalidChunkNum,
    /// `ErrFailValidation`.
    FailValidation,
    /// `ErrStatusNoUploads`.
    StatusNoUploads,
    /// `ErrPayloadRequired`.
    PayloadRequired,
    /// `ErrFileSizeRequired`.
    FileSizeRequired,
    /// `ErrInvalidFileSize`, with Go's text.
    InvalidFileSize(String),
    /// `ErrFieldRequired`, with Go's text.
    FieldRequired(String),
    /// `file.ErrInvalidID`.
    InvalidFileId,
    /// `ErrPayloadSizeTooLarge`.
    PayloadSizeTooLarge,
    /// `delivery.ErrNoFile`.
    NoFile,
    /// `ErrBadRange`.
    RangeNotSatisfiable,
    /// `ErrMultiRangeNotSupported`.
    MultipartRange,
    /// `ErrClientFileForbidden`.
    ClientFileForbidden,
    /// `ErrFileForDeliveryNotFound`.
    FileForDeliveryNotFound,
}

impl From<FileRefusal> for OpError {
    fn from(f: FileRefusal) -> Self {
        OpError::File(f)
    }
}

impl From<StoreError> for OpError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(_) => OpError::Unavailable,
            StoreError::Failed { status, detail } => OpError::StoreFailed { status, detail },
            StoreError::TooManyRequests => OpError::Overloaded,
            StoreError::Conflict => OpError::Refused("version conflict".into()),
            StoreError::NotFound => OpError::Refused("document missing".into()),
        }
    }
}
