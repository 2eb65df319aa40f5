//! Uploaded files for the operator, on Kibana's paths: `GET /api/fleet/agents/{id}/uploads`
//! (an agent's diagnostics bundles, Kibana's `AgentDiagnostics` items), `GET
//! /api/fleet/fleet_edge/files` (every upload, fleet-edge's own), and `GET
//! /api/fleet/agents/files/{fileId}/{fileName}` (the bytes).
//!
//! Downloads honour one `Range: bytes=...` (206 with `Content-Range`; several ranges or one
//! outside the file: 416). The body streams: it names the chunks it covers and the connection
//! fetches them one at a time as its socket drains, so a download holds at most one chunk.

use serde_json::{json, Map, Value};

use crate::backend::files::{ByteRange, FileStatus, FileStore, UploadInfo};
use crate::http::Response;

use crate::backend::admin::Admin;

/// One listing item (Kibana's `AgentDiagnostics` plus size and agent).
pub fn item(doc: &Map<String, Value>) -> Value {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_owned();
    let id = text(doc.get("_id"));
    let file = doc.get("file").and_then(Value::as_object);
    let name = text(file.and_then(|f| f.get("name")));
    let status = text(file.and_then(|f| f.get("Status")));
    let start = doc.get("upload_start").and_then(Value::as_i64).unwrap_or(0);
    let created = crate::model::time::rfc3339_millis(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(start.max(0).unsigned_abs()),
    );
    json!({
        "id": id,
        "name": name,
        "filePath": format!("/api/fleet/agents/files/{id}/{name}"),
        "actionId": text(doc.get("action_id")),
        "agentId": text(doc.get("agent_id")),
        "uploadId": text(doc.get("upload_id")),
        "status": status,
        "size": file.and_then(|f| f.get("size")).cloned().unwrap_or(Value::Null),
        "createTime": created,
    })
}

fn files(admin: &dyn Admin) -> Result<&dyn FileStore, (u16, Value)> {
    admin.store().files().ok_or_else(|| {
        (
            404,
            json!({"statusCode": 404, "error": "Not Found", "message": "this store keeps no files"}),
        )
    })
}

/// The uploads of one agent, or of all: `{"items": [...]}`.
pub fn list(admin: &dyn Admin, agent_id: Option<&str>) -> (u16, Value) {
    let files = match files(admin) {
        Ok(f) => f,
        Err(answer) => return answer,
    };
    match files.list_uploads(agent_id) {
        Ok(docs) => {
            let items: Vec<Value> = docs.iter().map(item).collect();
            (200, json!({"total": items.len(), "items": items}))
        }
        Err(e) => (
            503,
            json!({"statusCode": 503, "error": "Service Unavailable", "message": e.to_string()}),
        ),
    }
}

fn refusal(status: u16, error: &str, message: &str) -> Response {
    crate::http::error_response(status, error, message)
}

/// The answer to a [`super::Route::DownloadFile`] request (any other route: 404).
pub fn answer(admin: &dyn Admin, route: &super::Route) -> Response {
    match route {
        super::Route::DownloadFile(file) => download(admin, &file.id, file.range.as_deref()),
        _ => refusal(404, "Not Found", "no such file endpoint"),
    }
}

/// The bytes of READY file `file_id` (the metadata document's `_id`), whole or one range.
pub fn download(admin: &dyn Admin, file_id: &str, range: Option<&str>) -> Response {
    let files = match files(admin) {
        Ok(f) => f,
        Err((status, body)) => return Response::json(status, &body),
    };
    let unavailable =
        |e: crate::backend::StoreError| refusal(503, "Service Unavailable", &e.to_string());
    let doc = match files.upload_doc(file_id) {
        Ok(Some(doc)) => doc,
        Ok(None) => return refusal(404, "Not Found", &format!("file {file_id} not found")),
        Err(e) => return unavailable(e),
    };
    let Some(info) = UploadInfo::from_doc(file_id, &doc) else {
        return refusal(
            500,
            "Internal Server Error",
            "the file's metadata is unreadable",
        );
    };
    if info.status != FileStatus::Ready {
        return refusal(
            409,
            "Conflict",
            &format!("file {file_id} is {}, not READY", info.status.as_str()),
        );
    }
    let mime = doc
        .get("file")
        .and_then(|f| f.get("mime_type"))
        .and_then(Value::as_str)
        .unwrap_or("application/octet-stream")
        .to_owned();
    let wanted = match range.map(|r| ByteRange::parse(r, info.size)) {
        None => None,
        Some(Ok(r)) => Some(r),
        Some(Err(message)) => {
            return refusal(416, "Requested Range Not Satisfiable", message)
                .with_header("Content-Range", format!("bytes */{}", info.size))
        }
    };
    let (status, span) = match wanted {
        Some(r) => (206, r),
        None => (
            200,
            ByteRange {
                start: 0,
                end: info.size.saturating_sub(1),
            },
        ),
    };
    let chunk = info.chunk_size.max(1);
    let parts = (span.start / chunk..=span.end / chunk)
        .map(|pos| {
            let base = pos * chunk;
            let from = span.start.max(base) - base;
            let to = span.end.min(base + chunk - 1) - base + 1;
            crate::http::BodyPart {
                locator: crate::backend::delivery::upload_locator(&info.doc_id, pos),
                skip: from,
                take: to - from,
            }
        })
        .collect();
    let body = crate::http::Body::Parts(crate::http::PartsBody { parts });
    let name = doc
        .get("file")
        .and_then(|f| f.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut response = Response::new(status)
        .with_header("Content-Type", mime)
        .with_header("Content-Disposition", attachment(name))
        .with_header("X-Content-Type-Options", "nosniff")
        .with_header("Accept-Ranges", "bytes");
    if status == 206 {
        response = response.with_header(
            "Content-Range",
            format!("bytes {}-{}/{}", span.start, span.end, info.size),
        );
    }
    if let Some(hash) = doc
        .get("transithash")
        .and_then(|t| t.get("sha256"))
        .and_then(Value::as_str)
    {
        response = response.with_header("X-Transit-SHA2", hash.to_owned());
    }
    response.body = body;
    response
}

/// Kibana's `Content-Disposition` for a download, `attachment; filename="NAME"`, with the
/// agent-chosen name kept to characters that need no quoting (others become `_`), so no name
/// can end the header or the quoted string.
fn attachment(name: &str) -> String {
    let safe: String = name
        .chars()
        .take(255)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-+()".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let safe = if safe.trim_matches('.').is_empty() {
        "download".to_owned()
    } else {
        safe
    };
    format!("attachment; filename=\"{safe}\"")
}

fn store_refusal(e: crate::backend::StoreError) -> (u16, Value) {
    use crate::backend::StoreError;
    let (status, error) = match &e {
        StoreError::NotFound => (404, "Not Found"),
        StoreError::Conflict => (409, "Conflict"),
        StoreError::Failed { status: 400, .. } => (400, "Bad Request"),
        StoreError::Failed { status: 409, .. } => (409, "Conflict"),
        _ => (503, "Service Unavailable"),
    };
    let message = match e {
        StoreError::Failed { detail, .. } => detail,
        other => other.to_string(),
    };
    (
        status,
        json!({"statusCode": status, "error": error, "message": message}),
    )
}

fn bad_request(message: &str) -> (u16, Value) {
    (
        400,
        json!({"statusCode": 400, "error": "Bad Request", "message": message}),
    )
}

/// Places a file for agents: `{name, agents, size, mime_type?, sha256?}` → `{item: {id,
/// chunk_size}}`; the parts follow with [`place_part`].
pub fn place_begin(admin: &dyn Admin, body: &Value, now: std::time::SystemTime) -> (u16, Value) {
    let files = match files(admin) {
        Ok(f) => f,
        Err(answer) => return answer,
    };
    let name = body["name"].as_str().filter(|n| !n.is_empty());
    let agents: Vec<String> = body["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    let (Some(name), Some(size)) = (name, body["size"].as_u64()) else {
        return bad_request("name and size are required");
    };
    if agents.is_empty() {
        return bad_request("agents must name at least one agent");
    }
    let mut doc =
        crate::backend::delivery::placed_doc(name, size, body["mime_type"].as_str(), &agents, now);
    if let Some(sha) = body["sha256"].as_str() {
        if let Some(file) = doc.get_mut("file").and_then(Value::as_object_mut) {
            file.insert("hash".into(), json!({"sha256": sha.to_ascii_lowercase()}));
        }
    }
    let id = crate::backend::ops::uuid_v4();
    match files.place_begin(&id, &doc) {
        Ok(()) => (
            200,
            json!({"item": {"id": id, "chunk_size": crate::backend::files::CHUNK_SIZE}}),
        ),
        Err(e) => store_refusal(e),
    }
}

/// One part of a placed file.
pub fn place_part(admin: &dyn Admin, part: &super::PlacedPart) -> (u16, Value) {
    let files = match files(admin) {
        Ok(f) => f,
        Err(answer) => return answer,
    };
    let Ok(n) = part.n.parse::<u64>() else {
        return bad_request("the part number must be a non-negative integer");
    };
    match files.place_part(&part.id, n, &part.bytes) {
        Ok(()) => (200, json!({"id": part.id, "part": n})),
        Err(e) => store_refusal(e),
    }
}

/// Completes a placed file: `{item: <its document>}`.
pub fn place_complete(admin: &dyn Admin, id: &str) -> (u16, Value) {
    let files = match files(admin) {
        Ok(f) => f,
        Err(answer) => return answer,
    };
    match files.place_complete(id) {
        Ok(mut doc) => {
            doc.insert("_id".into(), json!(id));
            (200, json!({"item": doc}))
        }
        Err(e) => store_refusal(e),
    }
}

/// The placed files: `{total, items}`.
pub fn list_placed(admin: &dyn Admin) -> (u16, Value) {
    let files = match files(admin) {
        Ok(f) => f,
        Err(answer) => return answer,
    };
    match files.list_placed() {
        Ok(docs) => (200, json!({"total": docs.len(), "items": docs})),
        Err(e) => store_refusal(e),
    }
}

#[cfg(test)]
mod tests {
    use super::attachment;

    #[test]
    fn a_download_names_its_file_without_header_tricks() {
        assert_eq!(
            attachment("elastic-agent-diagnostics-2026-12-03T08-00-00Z-00.zip"),
            "attachment; filename=\"elastic-agent-diagnostics-2026-12-03T08-00-00Z-00.zip\""
        );
        assert_eq!(
            attachment("a\"b\r\nSet-Cookie: x=1;.zip"),
            "attachment; filename=\"a_b__Set-Cookie__x_1_.zip\""
        );
        assert_eq!(attachment(""), "attachment; filename=\"download\"");
        assert_eq!(attachment(".."), "attachment; filename=\"download\"");
        assert_eq!(attachment("ünï.zip"), "attachment; filename=\"_n_.zip\"");
    }
}
