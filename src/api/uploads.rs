//! The upload endpoints' request side (fleet-protocol.md §8 "Uploads", §1.8): begin
//! (`POST /api/fleet/uploads`), chunk (`PUT /api/fleet/uploads/{id}/{n}`) and complete
//! (`POST /api/fleet/uploads/{id}`). What can be decided from the request alone is decided here,
//! in the order Fleet Server's generated binder and `handleUpload.go` decide it; the rest is a
//! job for `backend::ops::uploads`. Body caps (begin 5 MiB, complete 1 KiB, chunk 4 MiB) are
//! the decoder's, through `api::body_limits`; over them, begin and complete answer 413
//! `ErrPayloadSizeTooLarge` ([`too_large`]).

use serde_json::{Map, Value};

use super::json_body::{decode, GoBody};
use super::{auth, ApiError, Route};
use crate::backend::interface::Job;
use crate::backend::ops::uploads::{BeginInput, ChunkInput, CompleteInput, UploadAnswer};
use crate::http::{Method, Request, Response};

/// The path of upload begin.
pub const BEGIN_PATH: &str = "/api/fleet/uploads";

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// `upload_start_limit.max_body_byte_size`.
pub const BEGIN_MAX_BODY: usize = 5 * MIB;
/// `upload_end_limit.max_body_byte_size`.
pub const COMPLETE_MAX_BODY: usize = KIB;
/// `file.MaxChunkSize`: the chunk body cap (and the one chunk buffer a connection holds).
pub const CHUNK_MAX_BODY: usize = 4 * MIB;

/// Classifies `/api/fleet/uploads...` paths (`None`: not an upload path).
pub fn route<'a>(method: &Method, path: &'a str) -> Option<Route<'a>> {
    let post = *method == Method::Post;
    let (ok, route, allowed) = if path == BEGIN_PATH {
        (post, Route::UploadBegin, "POST")
    } else {
        let rest = path.strip_prefix("/api/fleet/uploads/")?;
        match rest.split('/').collect::<Vec<_>>().as_slice() {
            [id] if !id.is_empty() => (post, Route::UploadComplete(id), "POST"),
            [id, n] if !id.is_empty() && !n.is_empty() => {
                (*method == Method::Put, Route::UploadChunk(id, n), "PUT")
            }
            _ => return None,
        }
    };
    Some(if ok {
        route
    } else {
        Route::WrongMethod(allowed)
    })
}

/// The answer to a begin or complete body over its cap (§1.7 #56); `None` for other paths.
/// The path alone tells them apart from a chunk (two segments after `uploads/`).
pub fn too_large(path: &str) -> Option<Response> {
    match route(&Method::Post, path) {
        Some(Route::UploadBegin | Route::UploadComplete(_)) => {
            Some(super::errors::respond(&ApiError::PayloadSizeTooLarge))
        }
        _ => None,
    }
}

/// Go decodes the begin body into a `map[string]any` (`uploader.JSDict`).
const BEGIN_BODY: GoBody = GoBody {
    request: "upload begin",
    go_type: "uploader.JSDict",
    fields: &[],
};

/// Begin: the body is decoded and must name an agent before the key is looked at
/// (`validateUploadBeginRequest`); `None` payload is a JSON `null`.
pub fn begin(req: &Request) -> Result<Job, ApiError> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::FileInfoBodyRequired);
    }
    let first_null = serde_json::Deserializer::from_slice(&req.body)
        .into_iter::<Value>()
        .next()
        .is_some_and(|v| v.is_ok_and(|v| v.is_null()));
    let payload: Map<String, Value> = decode(&req.body, &BEGIN_BODY)?;
    let agent_id = payload
        .get("agent_id")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
        .ok_or(ApiError::AgentIdMissing)?
        .to_owned();
    let key = auth::api_key(req)?;
    Ok(Job::UploadBegin(BeginInput {
        key,
        agent_id,
        payload: (!first_null).then_some(payload),
    }))
}

/// Chunk: path and header parameters as the generated binder checks them (its errors are the
/// default mapping's 500), then the key.
pub fn chunk(req: &Request, upload_id: &str, chunk: &str) -> Result<Job, ApiError> {
    let chunk = chunk.parse::<i64>().map_err(|e| {
        let cause = match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                "value out of range"
            }
            _ => "invalid syntax",
        };
        ApiError::Internal(format!(
            "Invalid format for parameter chunkNum: error binding string parameter: strconv.ParseInt: parsing {chunk:?}: {cause}"
        ))
    })?;
    let sha2 = match req.header_count("x-chunk-sha2") {
        0 => {
            return Err(ApiError::Internal(
                "Header parameter X-Chunk-SHA2 is required, but not found".into(),
            ))
        }
        1 => req.header_str("x-chunk-sha2").unwrap_or("").to_owned(),
        n => {
            return Err(ApiError::Internal(format!(
                "Expected one value for X-Chunk-SHA2, got {n}"
            )))
        }
    };
    let key = auth::api_key(req)?;
    Ok(Job::UploadChunk(ChunkInput {
        key,
        upload_id: upload_id.to_owned(),
        chunk,
        sha2,
        body: req.body.clone(),
    }))
}

/// Complete: the body is decoded by the job, after the upload and its agent are checked.
pub fn complete(req: &Request, upload_id: &str) -> Result<Job, ApiError> {
    let key = auth::api_key(req)?;
    Ok(Job::UploadComplete(CompleteInput {
        key,
        upload_id: upload_id.to_owned(),
        body: req.body.clone(),
    }))
}

/// The 200 of a finished upload job.
pub fn answer(answer: UploadAnswer) -> Response {
    match answer {
        UploadAnswer::Begun(body) => Response::json(200, &body),
        UploadAnswer::Stored => Response::new(200),
        // Go writes these bytes without setting a Content-Type; net/http sniffs them as text.
        UploadAnswer::Completed => Response::text(200, r#"{"status":"ok"}"#),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: Method, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Request {
        Request {
            peer: None,
            tls: true,
            method,
            path: path.to_owned(),
            query: None,
            minor_version: 1,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.as_bytes().to_vec()))
                .collect(),
            body: body.to_vec(),
            keep_alive: true,
        }
    }

    #[test]
    fn upload_paths_are_classified_like_the_go_router() {
        assert_eq!(
            route(&Method::Post, "/api/fleet/uploads"),
            Some(Route::UploadBegin)
        );
        assert_eq!(
            route(&Method::Post, "/api/fleet/uploads/u1"),
            Some(Route::UploadComplete("u1"))
        );
        assert_eq!(
            route(&Method::Put, "/api/fleet/uploads/u1/3"),
            Some(Route::UploadChunk("u1", "3"))
        );
        assert_eq!(
            route(&Method::Post, "/api/fleet/uploads/u1/3"),
            Some(Route::WrongMethod("PUT"))
        );
        assert_eq!(
            route(&Method::Get, "/api/fleet/uploads"),
            Some(Route::WrongMethod("POST"))
        );
        assert_eq!(route(&Method::Put, "/api/fleet/uploads/u1/3/4"), None);
        assert_eq!(route(&Method::Post, "/api/fleet/uploads/"), None);
        assert_eq!(route(&Method::Post, "/api/fleet/upload"), None);
    }

    #[test]
    fn begin_body_errors_come_before_the_key() {
        let r = req(Method::Post, BEGIN_PATH, &[], b"  ");
        assert_eq!(begin(&r).unwrap_err(), ApiError::FileInfoBodyRequired);
        let r = req(Method::Post, BEGIN_PATH, &[], b"{}");
        assert_eq!(begin(&r).unwrap_err(), ApiError::AgentIdMissing);
        let r = req(Method::Post, BEGIN_PATH, &[], b"null");
        assert_eq!(begin(&r).unwrap_err(), ApiError::AgentIdMissing);
        let r = req(Method::Post, BEGIN_PATH, &[], br#"{"agent_id":""}"#);
        assert_eq!(begin(&r).unwrap_err(), ApiError::AgentIdMissing);
        let r = req(Method::Post, BEGIN_PATH, &[], b"[1]");
        match begin(&r).unwrap_err() {
            ApiError::BadRequest(m) => assert!(
                m.starts_with(
                    "unable to decode upload begin request: json: cannot unmarshal array"
                ),
                "{m}"
            ),
            other => panic!("{other:?}"),
        }
        let r = req(Method::Post, BEGIN_PATH, &[], br#"{"agent_id":"a"}"#);
        assert_eq!(begin(&r).unwrap_err(), ApiError::NoAuthHeader);
    }

    #[test]
    fn chunk_parameters_are_the_binders_500s() {
        let r = req(Method::Put, "/x", &[], b"");
        let e = chunk(&r, "u", "x").unwrap_err();
        assert_eq!(e.wire(), (500, "BadRequest".into()));
        assert_eq!(
            e.to_string(),
            "Invalid format for parameter chunkNum: error binding string parameter: strconv.ParseInt: parsing \"x\": invalid syntax"
        );
        let e = chunk(&r, "u", "0").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Header parameter X-Chunk-SHA2 is required, but not found"
        );
        let r = req(
            Method::Put,
            "/x",
            &[("X-Chunk-SHA2", "a"), ("X-Chunk-SHA2", "b")],
            b"",
        );
        assert_eq!(
            chunk(&r, "u", "0").unwrap_err().to_string(),
            "Expected one value for X-Chunk-SHA2, got 2"
        );
        let r = req(Method::Put, "/x", &[("X-Chunk-Sha2", "ab")], b"");
        assert_eq!(chunk(&r, "u", "-1").unwrap_err(), ApiError::NoAuthHeader);
    }

    #[test]
    fn answers_are_fleet_servers_bytes() {
        let r = answer(UploadAnswer::Completed);
        assert_eq!(r.body_bytes(), br#"{"status":"ok"}"#);
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
        let r = answer(UploadAnswer::Stored);
        assert_eq!((r.status, r.body_bytes()), (200, &b""[..]));
        let r = answer(UploadAnswer::Begun(
            serde_json::json!({"upload_id": "u", "chunk_size": 4194304}),
        ));
        assert_eq!(r.header("content-type"), Some("application/json"));
    }

    #[test]
    fn oversized_begin_and_complete_are_413() {
        let r = too_large(BEGIN_PATH).unwrap();
        assert_eq!(r.status, 413);
        let body: Value = serde_json::from_slice(r.body_bytes()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"statusCode":413,"error":"ErrPayloadSizeTooLarge","message":"the request body exceeds the maximum allowed size"})
        );
        assert!(too_large("/api/fleet/uploads/u").is_some());
        assert!(too_large("/api/fleet/uploads/u/0").is_none());
        assert!(too_large("/api/fleet/agents/a/checkin").is_none());
    }
}
