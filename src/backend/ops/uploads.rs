//! The upload endpoints' store work (fleet-protocol.md §8 "Uploads"), in Fleet Server's order
//! (`handleUpload.go`, `file/uploader`): begin validates the payload and writes the metadata
//! document; a chunk finds its upload, checks expiry, status and position, then the agent, then
//! the bytes' hash, and stores them; complete re-reads the upload, checks every chunk (count,
//! positions, sizes, `last` flags) and the transit hash, and marks it READY, or UPLOAD_ERROR
//! with its chunks deleted.
//!
//! Requests arrive already framed and decoded by `api/uploads.rs`; storage is
//! [`crate::backend::files::FileStore`].

use std::time::SystemTime;

use serde_json::{json, Map, Value};

use super::{authenticate_agent, uuid_v4};
use crate::backend::error::FileRefusal;
use crate::backend::files::{
    epoch_millis, ChunkInfo, ChunkWrite, FileSettings, FileStatus, FileStore, UploadInfo,
    CHUNK_SIZE,
};
use crate::backend::OpError;
use crate::backend::{ApiKey, Store, StoreError};

/// `POST /api/fleet/uploads`, after the body decoded and named an agent.
#[derive(Debug, Clone)]
pub struct BeginInput {
    /// The access key presented.
    pub key: ApiKey,
    /// The body's `agent_id`.
    pub agent_id: String,
    /// The decoded body (`null` decodes to an empty payload).
    pub payload: Option<Map<String, Value>>,
}

/// `PUT /api/fleet/uploads/{id}/{n}`.
#[derive(Debug, Clone)]
pub struct ChunkInput {
    /// The access key presented.
    pub key: ApiKey,
    /// The upload id of the path.
    pub upload_id: String,
    /// The chunk number of the path.
    pub chunk: i64,
    /// `X-Chunk-SHA2`.
    pub sha2: String,
    /// The chunk's bytes.
    pub body: Vec<u8>,
}

/// `POST /api/fleet/uploads/{id}`.
#[derive(Debug, Clone)]
pub struct CompleteInput {
    /// The access key presented.
    pub key: ApiKey,
    /// The upload id of the path.
    pub upload_id: String,
    /// The raw body (decoded after the upload and agent are checked, as Go does).
    pub body: Vec<u8>,
}

/// What an upload endpoint answers on success.
#[derive(Debug, Clone, PartialEq)]
pub enum UploadAnswer {
    /// Begin: `{"upload_id","chunk_size"}`.
    Begun(Value),
    /// Chunk: an empty 200.
    Stored,
    /// Complete: `{"status":"ok"}`.
    Completed,
}

fn files(store: &dyn Store) -> Result<&dyn FileStore, OpError> {
    store
        .files()
        .ok_or_else(|| OpError::Refused("file transfer is not available with this store".into()))
}

/// A create that hit an existing document, as Elasticsearch words it.
fn conflict(doc: &str) -> OpError {
    OpError::StoreFailed {
        status: 409,
        detail: format!(
            "version_conflict_engine_exception: [{doc}]: version conflict, document already exists"
        ),
    }
}

fn store_err(doc: &str) -> impl Fn(StoreError) -> OpError + '_ {
    move |e| match e {
        StoreError::Conflict => conflict(doc),
        other => OpError::from(other),
    }
}

/// Go's `JSDict.Str`: a string at `path`.
fn string_at<'a>(payload: &'a Map<String, Value>, path: &[&str]) -> Option<&'a str> {
    let (last, parents) = path.split_last()?;
    let mut map = payload;
    for key in parents {
        map = map.get(*key)?.as_object()?;
    }
    map.get(*last)?.as_str()
}

/// Go's `JSDict.Int64` on a `json.Number`: an integer at `file.size` (a fraction or a number
/// out of range is not one).
fn file_size(payload: &Map<String, Value>) -> Option<i64> {
    payload.get("file")?.as_object()?.get("size")?.as_i64()
}

/// `validateUploadPayload` and the checks of `Uploader.Begin` before the id is made.
pub fn validate_begin(
    payload: Option<&Map<String, Value>>,
    settings: &FileSettings,
) -> Result<u64, OpError> {
    if settings.max_file_size == Some(0) {
        return Err(OpError::File(FileRefusal::FileFeatureDisabled));
    }
    let Some(payload) = payload else {
        return Err(OpError::File(FileRefusal::PayloadRequired));
    };
    for path in [
        &["file", "name"][..],
        &["file", "mime_type"],
        &["action_id"],
        &["agent_id"],
        &["src"],
    ] {
        if string_at(payload, path).is_none_or(|v| v.trim().is_empty()) {
            return Err(FileRefusal::FieldRequired(format!(
                "{} is required: field required",
                path.join(".")
            ))
            .into());
        }
    }
    let size = file_size(payload).ok_or(OpError::File(FileRefusal::FileSizeRequired))?;
    if size <= 0 {
        return Err(
            FileRefusal::InvalidFileSize(format!("file.size: {size}: invalid filesize")).into(),
        );
    }
    let size = size.unsigned_abs();
    if settings.max_file_size.is_some_and(|max| size > max) {
        return Err(OpError::File(FileRefusal::FileSizeTooLarge));
    }
    Ok(size)
}

/// Begins an upload: the agent is bound to the key, the payload validated and enriched, the
/// metadata document written.
pub fn begin(
    store: &dyn Store,
    input: &BeginInput,
    settings: &FileSettings,
    now: SystemTime,
) -> Result<UploadAnswer, OpError> {
    let agent = authenticate_agent(store, &input.key, &input.agent_id)?;
    let size = validate_begin(input.payload.as_ref(), settings)?;
    let mut doc = input.payload.clone().unwrap_or_default();
    let files = files(store)?;
    if !files.admit(size, settings, now).map_err(OpError::from)? {
        return Err(OpError::File(FileRefusal::FileSizeTooLarge));
    }
    let upload_id = uuid_v4();
    let text = |path: &[&str]| string_at(&doc, path).unwrap_or("").to_owned();
    let (action_id, source) = (text(&["action_id"]), text(&["src"]));
    let start_ms = epoch_millis(now);
    let info = UploadInfo {
        doc_id: format!("{action_id}.{}", input.agent_id),
        upload_id: upload_id.clone(),
        source,
        agent_id: input.agent_id.clone(),
        action_id,
        size,
        chunk_size: CHUNK_SIZE,
        start_ms,
        status: FileStatus::Awaiting,
    };
    if let Some(file) = doc.get_mut("file").and_then(Value::as_object_mut) {
        file.insert("ChunkSize".into(), json!(CHUNK_SIZE));
        file.insert("Status".into(), json!(FileStatus::Awaiting.as_str()));
    }
    doc.insert("upload_id".into(), json!(upload_id));
    doc.insert("upload_start".into(), json!(start_ms));
    doc.insert("@timestamp".into(), json!(start_ms));
    // Go's nil slice: an agent without namespaces writes `null`.
    let namespaces = match agent.namespaces.is_empty() {
        true => Value::Null,
        false => json!(agent.namespaces),
    };
    doc.insert("namespaces".into(), namespaces);
    files
        .create_upload(&info, &doc)
        .map_err(store_err(&info.doc_id))?;
    log::info!(
        "upload {upload_id} begun by agent {} for action {} ({size} bytes, {} chunks)",
        info.agent_id,
        info.action_id,
        info.chunk_count()
    );
    Ok(UploadAnswer::Begun(
        json!({"upload_id": upload_id, "chunk_size": CHUNK_SIZE}),
    ))
}

/// `GetUploadInfo`: an unknown id is `file.ErrInvalidID`.
fn find_upload(files: &dyn FileStore, upload_id: &str) -> Result<UploadInfo, OpError> {
    files
        .upload(upload_id)
        .map_err(OpError::from)?
        .ok_or(OpError::File(FileRefusal::InvalidFileId))
}

/// Hex SHA-256 of `data`, lowercase.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, data).as_ref())
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Stores one chunk.
pub fn chunk(
    store: &dyn Store,
    input: &ChunkInput,
    now: SystemTime,
) -> Result<UploadAnswer, OpError> {
    let files = files(store)?;
    let info = find_upload(files, &input.upload_id)?;
    if info.expired(now) {
        return Err(OpError::File(FileRefusal::UploadExpired));
    }
    if !info.status.can_upload() {
        return Err(OpError::File(FileRefusal::UploadStopped));
    }
    let count = info.chunk_count();
    let pos = u64::try_from(input.chunk)
        .ok()
        .filter(|n| *n < count)
        .ok_or(OpError::File(FileRefusal::InvalidChunkNum))?;
    authenticate_agent(store, &input.key, &info.agent_id)?;
    // The body was read whole under the route's 4 MiB cap; Fleet Server writes it and deletes
    // it again on a mismatch, this checks before writing: the same answer, nothing left behind.
    let sum = sha256_hex(&input.body);
    if !sum.eq_ignore_ascii_case(&input.sha2) {
        return Err(OpError::File(FileRefusal::HashMismatch));
    }
    let chunk_id = format!("{}.{pos}", info.doc_id);
    files
        .write_chunk(
            &info,
            &ChunkWrite {
                pos,
                last: pos + 1 == count,
                sha2: &input.sha2,
                data: &input.body,
                timestamp_ms: epoch_millis(now),
            },
        )
        .map_err(store_err(&chunk_id))?;
    Ok(UploadAnswer::Stored)
}

/// Go's `UploadCompleteRequest`: only `transithash.sha256` is read.
fn transit_hash(body: &[u8]) -> Result<String, OpError> {
    let bad = || OpError::Invalid("unable to decode upload complete request".into());
    let value: Value = match serde_json::Deserializer::from_slice(body)
        .into_iter::<Value>()
        .next()
    {
        Some(Ok(v)) => v,
        _ => return Err(bad()),
    };
    let hash = match &value {
        Value::Null => None,
        Value::Object(map) => match map.get("transithash") {
            None | Some(Value::Null) => None,
            Some(Value::Object(t)) => match t.get("sha256") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => return Err(bad()),
            },
            Some(_) => return Err(bad()),
        },
        _ => return Err(bad()),
    };
    match hash.as_deref().map(str::trim) {
        Some(h) if !h.is_empty() => Ok(h.to_owned()),
        _ => Err(OpError::File(FileRefusal::TransitHashRequired)),
    }
}

/// Completes an upload.
pub fn complete(
    store: &dyn Store,
    input: &CompleteInput,
    _now: SystemTime,
) -> Result<UploadAnswer, OpError> {
    let files = files(store)?;
    let info = find_upload(files, &input.upload_id)?;
    authenticate_agent(store, &input.key, &info.agent_id)?;
    let hash = transit_hash(&input.body)?;
    // Fresh, not cached: the status decides.
    let info = find_upload(files, &input.upload_id)?;
    if !info.status.can_upload() {
        return Err(OpError::File(FileRefusal::StatusNoUploads));
    }
    let mut chunks = files.chunk_infos(&info).map_err(OpError::from)?;
    chunks.sort_by_key(|c| c.pos);
    let count = info.chunk_count();
    let complete =
        chunks.len() as u64 == count && chunks.iter().enumerate().all(|(i, c)| c.pos == i as u64);
    if !complete {
        log::info!(
            "upload {} of agent {}: {} of {count} chunks present",
            info.upload_id,
            info.agent_id,
            chunks.len()
        );
        return Err(OpError::File(FileRefusal::MissingChunks));
    }
    if let Err(why) = verify_chunks(&info, &chunks, &hash) {
        log::warn!(
            "upload {} of agent {} failed validation: {why}",
            info.upload_id,
            info.agent_id
        );
        if let Err(e) = files.set_upload_status(&info, FileStatus::Failed, None) {
            log::warn!(
                "upload {}: setting UPLOAD_ERROR failed: {e}",
                info.upload_id
            );
        }
        if let Err(e) = files.delete_chunks(&info) {
            log::warn!("upload {}: deleting its chunks failed: {e}", info.upload_id);
        }
        return Err(OpError::File(FileRefusal::FailValidation));
    }
    files
        .set_upload_status(&info, FileStatus::Ready, Some(&hash))
        .map_err(OpError::from)?;
    log::info!(
        "upload {} of agent {} is READY ({} bytes)",
        info.upload_id,
        info.agent_id,
        info.size
    );
    Ok(UploadAnswer::Completed)
}

/// `verifyChunkInfo`: sizes, `last` flags and the transit hash (SHA-256 over the binary
/// chunk digests in order). `Err` says what failed, for the log.
pub fn verify_chunks(info: &UploadInfo, chunks: &[ChunkInfo], transit: &str) -> Result<(), String> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let count = info.chunk_count();
    for (i, chunk) in chunks.iter().enumerate() {
        let i = i as u64;
        if i + 1 < count {
            if chunk.last {
                return Err(format!("chunk {i} is marked last"));
            }
            if chunk.size != info.chunk_size {
                return Err(format!("chunk {i} has {} bytes", chunk.size));
            }
        } else {
            if !chunk.last {
                return Err(format!("final chunk {i} is not marked last"));
            }
            if chunk.size == 0 || chunk.size > info.chunk_size {
                return Err(format!("final chunk {i} has {} bytes", chunk.size));
            }
        }
        let raw = unhex(&chunk.sha2).ok_or_else(|| format!("chunk {i} hash is not hex"))?;
        ctx.update(&raw);
    }
    let sum = hex(ctx.finish().as_ref());
    if !sum.eq_ignore_ascii_case(transit) {
        return Err("transit hash does not match".into());
    }
    Ok(())
}

/// Decodes hex (either case); `None` when it is not hex (Go's `hex.DecodeString`).
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
#[path = "uploads_tests.rs"]
mod tests;
