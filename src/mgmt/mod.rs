//! The management API of single-box mode: a Kibana-shaped subset of the Fleet API for the operator
//! (agents and their status, enrollment tokens, policies, UNENROLL / UPGRADE /
//! REQUEST_DIAGNOSTICS actions and their results), on its own listener bound to 127.0.0.1 (plain
//! HTTP; off loopback TLS only, see `tls`) and protected by a bearer admin token generated into
//! the data dir (mode 0600). The `fleet-edge` CLI subcommands are thin clients of it (see `cli`).
//!
//! `handle` is the pure routing and authentication step on the event loop; the operations run on
//! backend workers through [`Admin`] (they touch the store).

pub mod actions;
pub mod admin;
pub mod agents;
pub mod console;
pub mod files;
pub mod history;
pub mod listing;
pub mod monitor;
pub mod ops;
pub mod policies;
pub mod query;
pub mod route_stats;
pub mod tls;
pub mod token;
pub mod upgrade;

use std::path::PathBuf;

use serde_json::Value;

use crate::http::{Method, Request, Response};

pub use admin::{Admin, AdminRequest};

/// The bulk agent operations (`POST /api/fleet/agents/bulk_*`), Kibana's bodies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bulk {
    /// `bulk_reassign` `{agents, policy_id}`.
    Reassign,
    /// `bulk_unenroll` `{agents, revoke?, force?}`.
    Unenroll,
    /// `bulk_upgrade` `{agents, version, source_uri?, start_time?, rollout_duration_seconds?,
    /// force?}` (see `upgrade.rs`).
    Upgrade,
    /// `bulk_request_diagnostics` `{agents, additional_metrics?}`.
    RequestDiagnostics,
    /// `bulk_update_agent_tags` `{agents, tagsToAdd?, tagsToRemove?}`.
    UpdateTags,
}

/// The management API's routes: Kibana's Fleet API paths (`/api/fleet/...`) for what embedded
/// mode manages, and `/api/fleet/fleet_edge/...` for what Kibana has no path for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /api/fleet/agents` (`page`, `perPage`, `showInactive`, `kuery`, `sortField`,
    /// `sortOrder`, `getStatusSummary`).
    ListAgents,
    /// `GET /api/fleet/agents/{id}`.
    GetAgent(String),
    /// `PUT /api/fleet/agents/{id}` with `{tags?, user_provided_metadata?}`.
    UpdateAgent(String),
    /// `DELETE /api/fleet/agents/{id}`: removes an unenrolled (or dead) agent's document.
    DeleteAgent(String),
    /// `POST /api/fleet/agents/{id}/reassign` with `{policy_id}`.
    Reassign(String),
    /// `POST /api/fleet/agents/{id}/unenroll` with `{revoke?, force?}`.
    Unenroll(String),
    /// `POST /api/fleet/agents/{id}/upgrade` with `{"version": ...}`.
    Upgrade(String),
    /// `POST /api/fleet/agents/{id}/request_diagnostics`.
    RequestDiagnostics(String),
    /// `POST /api/fleet/agents/{id}/migrate` with `{"uri", "enrollment_token", "settings"?}`
    /// (Kibana's body): a MIGRATE action moving the agent to another Fleet Server.
    Migrate(String),
    /// `POST /api/fleet/agents/{id}/privilege_level_change` with `{user_info?}`.
    PrivilegeLevelChange(String),
    /// `POST /api/fleet/agents/{id}/actions` with `{action: {type, data?}}` (SETTINGS, ...).
    AgentAction(String),
    /// `POST /api/fleet/agents/bulk_*`.
    Bulk(Bulk),
    /// `GET /api/fleet/agents/tags`.
    AgentTags,
    /// `GET /api/fleet/agent_status` (`policyId`, `kuery`): counts by status.
    AgentStatusCounts,
    /// `GET /api/fleet/agents/action_status`: every action's progress.
    ActionStatus,
    /// `POST /api/fleet/agents/actions/{action_id}/cancel`.
    CancelAction(String),
    /// `GET /api/fleet/enrollment_api_keys`.
    ListTokens,
    /// `GET /api/fleet/enrollment_api_keys/{id}`.
    GetToken(String),
    /// `POST /api/fleet/enrollment_api_keys` with `{"policy_id": ...}`.
    CreateToken,
    /// `DELETE /api/fleet/enrollment_api_keys/{id}`.
    RevokeToken(String),
    /// `GET /api/fleet/agent_policies`.
    ListPolicies,
    /// `GET /api/fleet/agent_policies/{id}`.
    GetPolicy(String),
    /// `GET /api/fleet/agent_policies/{id}/full`: the compiled policy agents receive.
    FullPolicy(String),
    /// `POST /api/fleet/agent_policies` with Kibana's `{name, namespace, ...}`.
    CreatePolicy,
    /// `PUT /api/fleet/agent_policies/{id}` with Kibana's `{name, namespace, ...}` settings.
    UpdatePolicy(String),
    /// `POST /api/fleet/agent_policies/delete` with `{agentPolicyId}`.
    DeletePolicy,
    /// `PUT /api/fleet/fleet_edge/policies/{id}` with a full (compiled) agent policy: Kibana has
    /// no such path, so no Kibana client sends a body this misreads.
    UploadPolicy(String),
    /// `GET /api/fleet/actions/{action_id}/results`.
    ActionResults(String),
    /// `POST /api/fleet/fleet_edge/snapshot`: a consistent copy of the store for a backup.
    Snapshot,
    /// `GET /api/fleet/fleet_edge/health`: the engine's figures (answered by the engine, not a
    /// worker): health, parked long polls, jobs in flight, checkin writes pending.
    ServerHealth,
    /// `GET /api/fleet/fleet_edge/status_history`: agents by status every 5 minutes over the
    /// last 24 hours (`history.rs`), for the console's chart.
    StatusHistory,
    /// `GET /api/fleet/fleet_edge/enrollment`: the quick start's Fleet Server URL and its
    /// `elastic-agent install` command with `{TOKEN}` for the enrollment token.
    Enrollment,
    /// `GET /api/fleet/agents/{id}/uploads`: an agent's uploaded files.
    AgentUploads(String),
    /// `GET /api/fleet/fleet_edge/files`: every uploaded file.
    ListFiles,
    /// `GET /api/fleet/agents/files/{fileId}/{fileName}`: a file's bytes, with the request's
    /// `Range` header if any (boxed: it keeps every route, and so each job, small).
    DownloadFile(Box<FileDownload>),
    /// `POST /api/fleet/fleet_edge/deliveries` with `{name, agents, size, mime_type?, sha256?}`:
    /// the operator places a file for agents (embedded store); the answer names its id.
    PlaceBegin,
    /// `PUT /api/fleet/fleet_edge/deliveries/{id}/{n}` with part `n`'s raw bytes (4 MiB each but
    /// the last, in order).
    PlacePart(Box<PlacedPart>),
    /// `POST /api/fleet/fleet_edge/deliveries/{id}`: the file is complete (size and SHA-256
    /// checked); agents may fetch it from `GET /api/fleet/file/{id}`.
    PlaceComplete(String),
    /// `GET /api/fleet/fleet_edge/deliveries`: the placed files.
    ListPlaced,
}

/// One part of a placed file ([`Route::PlacePart`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacedPart {
    /// The file id.
    pub id: String,
    /// The part's number as written in the path.
    pub n: String,
    /// The raw body.
    pub bytes: Vec<u8>,
}

/// The path of the placed files.
pub const DELIVERIES: &str = "/api/fleet/fleet_edge/deliveries";

/// Body caps of management requests: a placed file's part is up to 4 MiB; everything else as
/// the agent API caps an unrouted path.
pub fn body_limits(method: &Method, path: &str) -> crate::http::BodyLimits {
    let part = *method == Method::Put
        && path
            .strip_prefix(DELIVERIES)
            .and_then(|r| r.strip_prefix('/'))
            .is_some_and(|r| r.contains('/'));
    if part {
        let max = crate::backend::files::CHUNK_SIZE as usize;
        crate::http::BodyLimits {
            max_body: max,
            max_decompressed: max,
            defer_gzip: false,
        }
    } else {
        crate::api::body_limits(method, path)
    }
}

/// Which file a [`Route::DownloadFile`] asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileDownload {
    /// The metadata document's `_id`.
    pub id: String,
    /// The `Range` header.
    pub range: Option<String>,
}

/// Classifies a management request.
pub fn route(method: &Method, path: &str) -> Option<Route> {
    let parts: Vec<&str> = path.trim_start_matches("/api/fleet/").split('/').collect();
    if !path.starts_with("/api/fleet/") || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let id = |s: &str| s.to_owned();
    Some(match (method, parts.as_slice()) {
        (Method::Get, ["agents"]) => Route::ListAgents,
        (Method::Get, ["agents", "tags"]) => Route::AgentTags,
        (Method::Get, ["agents", "action_status"]) => Route::ActionStatus,
        (Method::Post, ["agents", "actions", a, "cancel"]) => Route::CancelAction(id(a)),
        (Method::Post, ["agents", "bulk_reassign"]) => Route::Bulk(Bulk::Reassign),
        (Method::Post, ["agents", "bulk_unenroll"]) => Route::Bulk(Bulk::Unenroll),
        (Method::Post, ["agents", "bulk_upgrade"]) => Route::Bulk(Bulk::Upgrade),
        (Method::Post, ["agents", "bulk_request_diagnostics"]) => {
            Route::Bulk(Bulk::RequestDiagnostics)
        }
        (Method::Post, ["agents", "bulk_update_agent_tags"]) => Route::Bulk(Bulk::UpdateTags),
        (Method::Get, ["agents", a]) => Route::GetAgent(id(a)),
        (Method::Put, ["agents", a]) => Route::UpdateAgent(id(a)),
        (Method::Delete, ["agents", a]) => Route::DeleteAgent(id(a)),
        (Method::Post, ["agents", a, "reassign"]) => Route::Reassign(id(a)),
        (Method::Post, ["agents", a, "unenroll"]) => Route::Unenroll(id(a)),
        (Method::Post, ["agents", a, "upgrade"]) => Route::Upgrade(id(a)),
        (Method::Post, ["agents", a, "request_diagnostics"]) => Route::RequestDiagnostics(id(a)),
        (Method::Post, ["agents", a, "migrate"]) => Route::Migrate(id(a)),
        (Method::Post, ["agents", a, "privilege_level_change"]) => {
            Route::PrivilegeLevelChange(id(a))
        }
        (Method::Post, ["agents", a, "actions"]) => Route::AgentAction(id(a)),
        (Method::Get, ["agent_status"]) => Route::AgentStatusCounts,
        (Method::Get, ["enrollment_api_keys"]) => Route::ListTokens,
        (Method::Get, ["enrollment_api_keys", k]) => Route::GetToken(id(k)),
        (Method::Post, ["enrollment_api_keys"]) => Route::CreateToken,
        (Method::Delete, ["enrollment_api_keys", k]) => Route::RevokeToken(id(k)),
        (Method::Get, ["agent_policies"]) => Route::ListPolicies,
        (Method::Post, ["agent_policies"]) => Route::CreatePolicy,
        (Method::Post, ["agent_policies", "delete"]) => Route::DeletePolicy,
        (Method::Get, ["agent_policies", p]) => Route::GetPolicy(id(p)),
        (Method::Get, ["agent_policies", p, "full"]) => Route::FullPolicy(id(p)),
        (Method::Put, ["agent_policies", p]) => Route::UpdatePolicy(id(p)),
        (Method::Put, ["fleet_edge", "policies", p]) => Route::UploadPolicy(id(p)),
        (Method::Get, ["actions", a, "results"]) => Route::ActionResults(id(a)),
        (Method::Post, ["fleet_edge", "snapshot"]) => Route::Snapshot,
        (Method::Get, ["agents", "files", f, _name]) => {
            Route::DownloadFile(Box::new(FileDownload {
                id: id(f),
                range: None,
            }))
        }
        (Method::Get, ["agents", a, "uploads"]) => Route::AgentUploads(id(a)),
        (Method::Get, ["fleet_edge", "files"]) => Route::ListFiles,
        (Method::Post, ["fleet_edge", "deliveries"]) => Route::PlaceBegin,
        (Method::Get, ["fleet_edge", "deliveries"]) => Route::ListPlaced,
        (Method::Put, ["fleet_edge", "deliveries", f, n]) => {
            Route::PlacePart(Box::new(PlacedPart {
                id: id(f),
                n: id(n),
                bytes: Vec::new(),
            }))
        }
        (Method::Post, ["fleet_edge", "deliveries", f]) => Route::PlaceComplete(id(f)),
        (Method::Get, ["fleet_edge", "health"]) => Route::ServerHealth,
        (Method::Get, ["fleet_edge", "enrollment"]) => Route::Enrollment,
        (Method::Get, ["fleet_edge", "status_history"]) => Route::StatusHistory,
        _ => return None,
    })
}

/// Where the management API keeps its files.
#[derive(Clone, Debug)]
pub struct Paths {
    /// `<data-dir>/policies`.
    pub policies_dir: PathBuf,
}

/// Authenticates and routes a management request: a job for the workers, or an answer now.
/// The console's pages and login are answered here (`console::serve`); the API accepts the
/// admin bearer token or a console session cookie (whose writes need its CSRF token).
/// `now` times the login guard; session expiry is wall-clock time (unix seconds, `wall`).
pub fn handle(
    req: &Request,
    creds: &token::Credentials,
    guard: &mut console::LoginGuard,
    now: std::time::Instant,
    wall: u64,
) -> Result<AdminRequest, Response> {
    if let Some(page) = console::serve(req, creds, guard, now, wall) {
        return Err(page);
    }
    let Some(caller) = console::caller(req, creds, wall) else {
        return Err(error(
            401,
            "Unauthorized",
            "a valid admin bearer token is required",
        ));
    };
    let Some(mut route) = route(&req.method, &req.path) else {
        return Err(error(404, "Not Found", "no such management endpoint"));
    };
    if let Route::DownloadFile(file) = &mut route {
        file.range = req.header_str("range").map(str::to_owned);
    }
    // Kibana refuses a write without `kbn-xsrf` (any value): a browser form cannot set it.
    if req.method != Method::Get {
        console::write_allowed(req, &caller, &creds.admin)?;
    }
    if let Route::PlacePart(part) = &mut route {
        part.bytes = req.body.clone();
    }
    let body = if req.body.is_empty() || matches!(route, Route::PlacePart(_)) {
        Value::Null
    } else {
        match serde_json::from_slice(&req.body) {
            Ok(v) => v,
            Err(e) => {
                return Err(error(
                    400,
                    "Bad Request",
                    &format!("the body is not JSON: {e}"),
                ))
            }
        }
    };
    Ok(AdminRequest {
        route,
        body,
        params: query::Params::parse(req.query.as_deref()),
        pending_checkins: Default::default(),
    })
}

/// Kibana's error body shape: `{"statusCode","error","message"}`.
pub fn error(status: u16, error: &str, message: &str) -> Response {
    crate::http::error_response(status, error, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: Method, path: &str, auth: Option<&str>, body: &str) -> Request {
        let mut headers = vec![("kbn-xsrf".to_owned(), b"true".to_vec())];
        if let Some(a) = auth {
            headers.push(("authorization".to_owned(), a.as_bytes().to_vec()));
        }
        Request {
            peer: None,
            tls: false,
            method,
            path: path.into(),
            query: None,
            minor_version: 1,
            headers,
            body: body.as_bytes().to_vec(),
            keep_alive: true,
        }
    }

    fn handle(req: &Request, token: &str) -> Result<AdminRequest, Response> {
        super::handle(
            req,
            &token::Credentials::admin(token),
            &mut console::LoginGuard::default(),
            std::time::Instant::now(),
            1_800_000_000,
        )
    }

    #[test]
    fn routes() {
        assert_eq!(
            route(&Method::Get, "/api/fleet/agents"),
            Some(Route::ListAgents)
        );
        assert_eq!(
            route(&Method::Post, "/api/fleet/agents/a1/unenroll"),
            Some(Route::Unenroll("a1".into()))
        );
        assert_eq!(
            route(&Method::Delete, "/api/fleet/enrollment_api_keys/k"),
            Some(Route::RevokeToken("k".into()))
        );
        assert_eq!(
            route(&Method::Put, "/api/fleet/agent_policies/p"),
            Some(Route::UpdatePolicy("p".into()))
        );
        assert_eq!(
            route(&Method::Put, "/api/fleet/fleet_edge/policies/p"),
            Some(Route::UploadPolicy("p".into()))
        );
        assert_eq!(
            route(&Method::Get, "/api/fleet/agents/tags"),
            Some(Route::AgentTags)
        );
        assert_eq!(
            route(&Method::Post, "/api/fleet/agents/bulk_unenroll"),
            Some(Route::Bulk(Bulk::Unenroll))
        );
        assert_eq!(
            route(&Method::Post, "/api/fleet/agent_policies/delete"),
            Some(Route::DeletePolicy)
        );
        assert_eq!(
            route(&Method::Post, "/api/fleet/agents/a1/migrate"),
            Some(Route::Migrate("a1".into()))
        );
        assert_eq!(
            route(&Method::Post, "/api/fleet/fleet_edge/snapshot"),
            Some(Route::Snapshot)
        );
        assert_eq!(route(&Method::Get, "/api/fleet/agents/"), None);
        assert_eq!(route(&Method::Get, "/api/status"), None);
    }

    #[test]
    fn bearer_token_is_required_and_compared() {
        assert_eq!(
            handle(&req(Method::Get, "/api/fleet/agents", None, ""), "t0k")
                .unwrap_err()
                .status,
            401
        );
        assert_eq!(
            handle(
                &req(Method::Get, "/api/fleet/agents", Some("Bearer nope"), ""),
                "t0k"
            )
            .unwrap_err()
            .status,
            401
        );
        assert_eq!(
            handle(
                &req(Method::Get, "/api/fleet/nothing", Some("Bearer t0k"), ""),
                "t0k"
            )
            .unwrap_err()
            .status,
            404
        );
        assert_eq!(
            handle(
                &req(
                    Method::Post,
                    "/api/fleet/enrollment_api_keys",
                    Some("Bearer t0k"),
                    "{x"
                ),
                "t0k"
            )
            .unwrap_err()
            .status,
            400
        );
        let ok = handle(
            &req(
                Method::Post,
                "/api/fleet/enrollment_api_keys",
                Some("Bearer t0k"),
                r#"{"policy_id":"p"}"#,
            ),
            "t0k",
        )
        .unwrap();
        assert_eq!(ok.route, Route::CreateToken);
        assert_eq!(ok.body["policy_id"], "p");
    }

    #[test]
    fn writes_need_kbn_xsrf_as_in_kibana() {
        let mut write = req(
            Method::Post,
            "/api/fleet/agents/a/unenroll",
            Some("Bearer t0k"),
            "{}",
        );
        assert!(handle(&write, "t0k").is_ok());
        write.headers.retain(|(n, _)| n != "kbn-xsrf");
        let refused = handle(&write, "t0k").unwrap_err();
        assert_eq!(refused.status, 400);
        assert!(
            matches!(&refused.body, crate::http::Body::Bytes(b) if String::from_utf8_lossy(b).contains("kbn-xsrf")),
            "{refused:?}"
        );
        let mut read = req(Method::Get, "/api/fleet/agents", Some("Bearer t0k"), "");
        read.headers.retain(|(n, _)| n != "kbn-xsrf");
        read.query = Some("perPage=5".into());
        let ok = handle(&read, "t0k").unwrap();
        assert_eq!(ok.params.get("perPage"), Some("5"));
    }
}
