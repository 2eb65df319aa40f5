//! File delivery to an agent, `GET /api/fleet/file/{id}[?source=]` (fleet-protocol.md §8 "File
//! delivery"), decided as Fleet Server's `handleFileDelivery.go` decides it, in its order:
//!
//! 1. the access key, and the agent found by it (404 `AgentNotFound`; corrupted 400, inactive
//!    401);
//! 2. with a `source` (lower-cased, `*?"<>\/,|#` removed): the `X-elastic-product-origin` client
//!    must be allow-listed (`endpoint-security` → integration `endpoint`), else 403
//!    `ErrClientFileForbidden`; the metadata document is the library's. Without: the metadata
//!    document must target the agent and be READY. No match is 404 `ErrNoFile`; a lookup that
//!    fails is 404 `ErrFileForDeliveryNotFound` (Go's error table finds `ErrNoFile` first);
//! 3. the chunks: none is 404 `ErrNoFile`;
//! 4. `Accept-Ranges: bytes` from here on; a `Range` Go's `parseRange` refuses is 416 with
//!    `Content-Range: bytes */<size>`; ranges adding up to more than the file are ignored;
//!    several ranges are 416 "Multipart ranges not satisfiable"; one range is 206 with
//!    `Content-Range`, from the chunks it touches (a range past the chunks: 416);
//! 5. otherwise 200 with `Content-Type` (the file's `mime_type`, else
//!    `application/octet-stream`), `Content-Length` (`file.size`) and `X-File-SHA2` when the
//!    document has `file.hash.sha256`.
//!
//! The body is never read here: it is a [`Body::File`] (the embedded store's file) or a
//! [`Body::Parts`] naming the chunks, which the connection fetches one at a time as its socket
//! drains.

use std::collections::VecDeque;

use serde_json::{Map, Value};

use super::authenticate;
use crate::backend::delivery::{DeliveryBytes, DeliveryFrom};
use crate::backend::error::FileRefusal;
use crate::backend::files::CHUNK_SIZE;
use crate::backend::OpError;
use crate::backend::{ApiKey, Store};
use crate::http::{Body, BodyPart, FileBody, PartsBody, Response};

/// A file delivery request, as the router saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliverInput {
    /// The access key presented.
    pub key: ApiKey,
    /// The file id of the path.
    pub file_id: String,
    /// The sanitized `source` query parameter (empty: none).
    pub source: String,
    /// The sanitized `X-elastic-product-origin` header (empty: none).
    pub product_origin: String,
    /// The `Range` header.
    pub range: Option<String>,
}

/// Clients allowed to read integration libraries, and their integration
/// (`KnownProductOriginFileUsers`).
const LIBRARY_CLIENTS: &[(&str, &str)] = &[("endpoint-security", "endpoint")];

/// `sanitizedIndexInput`: trimmed, lower-cased, without `*?"<>\/,|#`.
pub fn sanitize(s: &str) -> String {
    s.trim()
        .to_lowercase()
        .chars()
        .filter(|c| {
            !matches!(
                c,
                '*' | '?' | '"' | '<' | '>' | '\\' | '/' | ',' | '|' | '#'
            )
        })
        .collect()
}

/// The answer: a streamed 200/206, or the refusal with the headers its response carries
/// (`api::Pending::finish` words it).
pub fn deliver(store: &dyn Store, input: &DeliverInput) -> Result<Response, Refusal> {
    answer(store, input)
}

/// A refused delivery: why, and the headers its response carries (`Accept-Ranges`,
/// `Content-Range`).
#[derive(Debug)]
pub struct Refusal {
    /// Why.
    pub error: OpError,
    /// Headers of the error response.
    pub headers: Vec<(&'static str, String)>,
}

impl From<OpError> for Refusal {
    fn from(error: OpError) -> Self {
        Refusal {
            error,
            headers: Vec::new(),
        }
    }
}

/// `authAgent` without an agent id: the key, then the agent by key.
fn agent_id(store: &dyn Store, key: &ApiKey) -> Result<String, OpError> {
    authenticate(store, key)?;
    let agent = store
        .agent_by_access_key(&key.id)
        .map_err(OpError::from)?
        .ok_or(OpError::AgentNotFound)?;
    if agent.agent.is_none() {
        return Err(OpError::AgentCorrupted);
    }
    if !agent.active {
        return Err(OpError::AgentInactive);
    }
    Ok(agent.id)
}

fn answer(store: &dyn Store, input: &DeliverInput) -> Result<Response, Refusal> {
    let agent = agent_id(store, &input.key)?;
    let files = store
        .files()
        .ok_or(OpError::File(FileRefusal::FileForDeliveryNotFound))?;
    let from = if input.source.is_empty() {
        DeliveryFrom::Agent(&agent)
    } else {
        if input.product_origin.is_empty() {
            return Err(OpError::File(FileRefusal::ClientFileForbidden).into());
        }
        let integration = LIBRARY_CLIENTS
            .iter()
            .find(|(client, _)| *client == input.product_origin)
            .map(|(_, integration)| *integration)
            .ok_or(OpError::File(FileRefusal::ClientFileForbidden))?;
        DeliveryFrom::Library {
            integration,
            source: &input.source,
        }
    };
    let meta = match files.delivery_meta(&input.file_id, from) {
        Ok(Some(meta)) => meta,
        Ok(None) => return Err(OpError::File(FileRefusal::NoFile).into()),
        Err(e) => {
            log::info!("file {} for delivery: lookup failed: {e}", input.file_id);
            return Err(OpError::File(FileRefusal::FileForDeliveryNotFound).into());
        }
    };
    let file = FileMeta::read(&meta);
    let bytes = files
        .delivery_bytes(&input.file_id, from)
        .map_err(OpError::from)?;
    if matches!(&bytes, DeliveryBytes::Chunks(c) if c.is_empty()) {
        log::warn!("chunk documents not found for file {}", input.file_id);
        return Err(OpError::File(FileRefusal::NoFile).into());
    }
    let size = file.size;
    let accept_ranges = ("Accept-Ranges", "bytes".to_owned());
    let ranges = match parse_range(input.range.as_deref().unwrap_or(""), size) {
        Ok(r) => r,
        Err(RangeRefused) => {
            return Err(Refusal {
                error: OpError::File(FileRefusal::RangeNotSatisfiable),
                headers: vec![accept_ranges, ("Content-Range", format!("bytes */{size}"))],
            })
        }
    };
    let refuse = |error| Refusal {
        error,
        headers: vec![accept_ranges.clone()],
    };
    // Ranges that add up to more than the file are ignored: the whole file is sent.
    let ranges = if ranges.iter().map(|r| r.1).sum::<i64>() > size {
        Vec::new()
    } else {
        ranges
    };
    let mut response = Response::new(200).with_header("Accept-Ranges", "bytes");
    let content_type = file
        .mime_type
        .clone()
        .unwrap_or_else(|| "application/octet-stream".into());
    let (status, body) = match ranges.as_slice() {
        [] => (200, whole(&bytes, size, file.chunk_size)),
        [(start, length)] => {
            let body = ranged(&bytes, *start, *length, file.chunk_size)
                .ok_or_else(|| refuse(OpError::File(FileRefusal::RangeNotSatisfiable)))?;
            response = response.with_header("Content-Type", content_type.clone());
            response = response.with_header(
                "Content-Range",
                format!("bytes {start}-{}/{size}", start + length - 1),
            );
            (206, body)
        }
        _ => return Err(refuse(OpError::File(FileRefusal::MultipartRange))),
    };
    if status == 200 {
        response = response.with_header("Content-Type", content_type);
    }
    if let Some(sha) = &file.sha256 {
        response = response.with_header("X-File-SHA2", sha.clone());
    }
    response.status = status;
    Ok(response.with_body(body))
}

/// What the response needs of the metadata document (`file.MetaDoc`).
struct FileMeta {
    size: i64,
    chunk_size: i64,
    mime_type: Option<String>,
    sha256: Option<String>,
}

impl FileMeta {
    fn read(doc: &Map<String, Value>) -> FileMeta {
        let file = doc.get("file");
        let text = |p: &str| {
            file.and_then(|f| f.pointer(p))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let number = |p: &str| file.and_then(|f| f.pointer(p)).and_then(Value::as_i64);
        FileMeta {
            size: number("/size").unwrap_or(0),
            chunk_size: number("/ChunkSize")
                .filter(|c| *c > 0)
                .unwrap_or(CHUNK_SIZE as i64),
            mime_type: text("/mime_type"),
            sha256: text("/hash/sha256"),
        }
    }
}

/// The whole file: every chunk in order, all of each but the last cut to `file.size`.
fn whole(bytes: &DeliveryBytes, size: i64, chunk_size: i64) -> Body {
    let size = u64::try_from(size).unwrap_or(0);
    match bytes {
        DeliveryBytes::File(file) => Body::File(FileBody {
            file: file.clone(),
            offset: 0,
            len: size,
        }),
        DeliveryBytes::Chunks(locators) => {
            let chunk = u64::try_from(chunk_size).unwrap_or(CHUNK_SIZE);
            let parts = locators
                .iter()
                .enumerate()
                .map(|(i, locator)| BodyPart {
                    locator: locator.clone(),
                    skip: 0,
                    take: chunk.min(size.saturating_sub(i as u64 * chunk)),
                })
                .collect();
            Body::Parts(PartsBody { parts })
        }
    }
}

/// One range, from the chunks it touches (`None`: it passes the chunks there are, Go's
/// `ErrBadRange`).
fn ranged(bytes: &DeliveryBytes, start: i64, length: i64, chunk_size: i64) -> Option<Body> {
    let (start, length) = (u64::try_from(start).ok()?, u64::try_from(length).ok()?);
    match bytes {
        DeliveryBytes::File(file) => Some(Body::File(FileBody {
            file: file.clone(),
            offset: start,
            len: length,
        })),
        DeliveryBytes::Chunks(locators) => {
            let chunk = u64::try_from(chunk_size).ok()?;
            let last = start + length - 1;
            let (first_idx, last_idx) = (start / chunk, last / chunk);
            if last_idx >= locators.len() as u64 {
                return None;
            }
            let mut parts = VecDeque::new();
            for idx in first_idx..=last_idx {
                let base = idx * chunk;
                let from = start.max(base) - base;
                let to = (last.min(base + chunk - 1)) - base + 1;
                parts.push_back(BodyPart {
                    locator: locators.get(usize::try_from(idx).ok()?)?.clone(),
                    skip: from,
                    take: to - from,
                });
            }
            Some(Body::Parts(PartsBody { parts }))
        }
    }
}

/// A `Range` header Go's `parseRange` refuses (answered 416).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RangeRefused;

/// Go's `parseRange` (from `net/http`): `(start, length)` pairs; `Err` for a malformed header or
/// one whose ranges all start past the end. An empty header (or `bytes=` alone) is no range.
pub fn parse_range(header: &str, size: i64) -> Result<Vec<(i64, i64)>, RangeRefused> {
    if header.is_empty() {
        return Ok(Vec::new());
    }
    let spec = header.strip_prefix("bytes=").ok_or(RangeRefused)?;
    let trim = |s: &str| s.trim_matches(|c| c == ' ' || c == '\t').to_owned();
    let mut ranges = Vec::new();
    let mut no_overlap = false;
    for ra in spec.split(',') {
        let ra = trim(ra);
        if ra.is_empty() {
            continue;
        }
        let (start, end) = ra.split_once('-').ok_or(RangeRefused)?;
        let (start, end) = (trim(start), trim(end));
        // strconv.ParseInt and Rust's parse accept the same signed decimals.
        let number = |s: &str| s.parse::<i64>().map_err(|_| RangeRefused);
        if start.is_empty() {
            if end.is_empty() || end.starts_with('-') {
                return Err(RangeRefused);
            }
            let n = number(&end)?;
            if n <= 0 {
                return Err(RangeRefused);
            }
            let n = n.min(size);
            ranges.push((size - n, n));
        } else {
            let first = number(&start)?;
            if first < 0 {
                return Err(RangeRefused);
            }
            if first >= size {
                no_overlap = true;
                continue;
            }
            let length = if end.is_empty() {
                size - first
            } else {
                let last = number(&end)?;
                if first > last {
                    return Err(RangeRefused);
                }
                last.min(size - 1) - first + 1
            };
            ranges.push((first, length));
        }
    }
    if no_overlap && ranges.is_empty() {
        return Err(RangeRefused);
    }
    Ok(ranges)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_as_go_parses_them() {
        let size = 600;
        for (header, want) in [
            ("bytes=10-209", vec![(10, 200)]),
            ("bytes=405-", vec![(405, 195)]),
            ("bytes=-150", vec![(450, 150)]),
            ("bytes=400-900", vec![(400, 200)]),
            ("bytes=-900", vec![(0, 600)]),
            ("bytes=0-50, 100-150", vec![(0, 51), (100, 51)]),
            ("bytes=", vec![]),
            ("", vec![]),
            ("bytes=700-800, 0-9", vec![(0, 10)]),
        ] {
            assert_eq!(parse_range(header, size), Ok(want), "{header}");
        }
        for header in [
            "bytes=900-1200",
            "bytes=100-20",
            "items=0-1",
            "bytes=abc",
            "bytes=-0",
            "bytes=--5",
            "bytes=-",
        ] {
            assert_eq!(parse_range(header, size), Err(RangeRefused), "{header}");
        }
    }

    #[test]
    fn a_range_is_cut_from_the_chunks_it_touches() {
        let chunks = DeliveryBytes::Chunks((0..6).map(|i| format!("c{i}")).collect());
        let Some(Body::Parts(p)) = ranged(&chunks, 103, 341, 100) else {
            panic!("parts expected");
        };
        let got: Vec<(String, u64, u64)> = p
            .parts
            .iter()
            .map(|b| (b.locator.clone(), b.skip, b.take))
            .collect();
        assert_eq!(
            got,
            vec![
                ("c1".into(), 3, 97),
                ("c2".into(), 0, 100),
                ("c3".into(), 0, 100),
                ("c4".into(), 0, 44)
            ]
        );
        assert_eq!(p.len(), 341);
        assert!(ranged(&chunks, 590, 20, 100).is_none(), "past the chunks");
        let Body::Parts(w) = whole(&chunks, 550, 100) else {
            panic!("parts expected");
        };
        assert_eq!(w.len(), 550);
        assert_eq!(w.parts.back().map(|b| b.take), Some(50));
    }

    #[test]
    fn sources_and_origins_are_sanitized_as_go_does() {
        assert_eq!(sanitize("  Endpoint-Security "), "endpoint-security");
        assert_eq!(sanitize("a*b?c\"d<e>f\\g/h,i|j#k"), "abcdefghijk");
    }
}
