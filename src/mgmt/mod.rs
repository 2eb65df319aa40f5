//! The management API of single-box mode: a Kibana-shaped subset of the Fleet API for the operator
//! (agents and their status, enrollment tokens, policies, UNENROLL / UPGRADE /
//! REQUEST_DIAGNOSTICS actions and their results), on its own listener bound to 127.0.0.1 (plain
//! HTTP; off loopback TLS only, see `tls`) and protected by a bearer admin token generated into
//! the data dir (mode 0600). The `fleet-edge` CLI subcommands are thin clients of it (see `cli`).
//!
//! `handle` is the pure routing and authentication step on the event loop; the operations run on
//! backend workers through [`Admin`] (they touch the store).

pub mod ops;
pub mod tls;
pub mod token;
pub mod upgrade;

use std::path::PathBuf;

use serde_json::Value;

use crate::http::{Method, Request, Response};

pub use ops::{Admin, AdminRequest};

/// The management API's routes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /api/fleet/agents`.
    ListAgents,
    /// `GET /api/fleet/agents/{id}`.
    GetAgent(String),
    /// `POST /api/fleet/agents/{id}/unenroll`.
    Unenroll(String),
    /// `POST /api/fleet/agents/{id}/upgrade` with `{"version": ...}`.
    Upgrade(String),
    /// `POST /api/fleet/agents/bulk_upgrade` (Kibana's body; see `upgrade.rs`).
    BulkUpgrade,
    /// `POST /api/fleet/agents/{id}/request_diagnostics`.
    RequestDiagnostics(String),
    /// `POST /api/fleet/agents/{id}/migrate` with `{"uri", "enrollment_token", "settings"?}`
    /// (Kibana's body): a MIGRATE action moving the agent to another Fleet Server.
    Migrate(String),
    /// `GET /api/fleet/enrollment_api_keys`.
    ListTokens,
    /// `POST /api/fleet/enrollment_api_keys` with `{"policy_id": ...}`.
    CreateToken,
    /// `DELETE /api/fleet/enrollment_api_keys/{id}`.
    RevokeToken(String),
    /// `GET /api/fleet/agent_policies`.
    ListPolicies,
    /// `PUT /api/fleet/agent_policies/{id}` with a full agent policy.
    PutPolicy(String),
    /// `GET /api/fleet/actions/{action_id}/results`.
    ActionResults(String),
    /// `POST /api/fleet/fleet_edge/snapshot`: a consistent copy of the store for a backup.
    Snapshot,
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
        (Method::Get, ["agents", a]) => Route::GetAgent(id(a)),
        (Method::Post, ["agents", a, "unenroll"]) => Route::Unenroll(id(a)),
        (Method::Post, ["agents", a, "upgrade"]) => Route::Upgrade(id(a)),
        (Method::Post, ["agents", "bulk_upgrade"]) => Route::BulkUpgrade,
        (Method::Post, ["agents", a, "request_diagnostics"]) => Route::RequestDiagnostics(id(a)),
        (Method::Post, ["agents", a, "migrate"]) => Route::Migrate(id(a)),
        (Method::Get, ["enrollment_api_keys"]) => Route::ListTokens,
        (Method::Post, ["enrollment_api_keys"]) => Route::CreateToken,
        (Method::Delete, ["enrollment_api_keys", k]) => Route::RevokeToken(id(k)),
        (Method::Get, ["agent_policies"]) => Route::ListPolicies,
        (Method::Put, ["agent_policies", p]) => Route::PutPolicy(id(p)),
        (Method::Get, ["actions", a, "results"]) => Route::ActionResults(id(a)),
        (Method::Post, ["fleet_edge", "snapshot"]) => Route::Snapshot,
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
pub fn handle(req: &Request, admin_token: &str) -> Result<AdminRequest, Response> {
    let presented = req
        .header_str("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if !presented.is_some_and(|p| token::equal(p, admin_token)) {
        return Err(error(
            401,
            "Unauthorized",
            "a valid admin bearer token is required",
        ));
    }
    let Some(route) = route(&req.method, &req.path) else {
        return Err(error(404, "Not Found", "no such management endpoint"));
    };
    let body = if req.body.is_empty() {
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
        let mut headers = Vec::new();
        if let Some(a) = auth {
            headers.push(("authorization".to_owned(), a.as_bytes().to_vec()));
        }
        Request {
            method,
            path: path.into(),
            query: None,
            minor_version: 1,
            headers,
            body: body.as_bytes().to_vec(),
            keep_alive: true,
        }
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
            Some(Route::PutPolicy("p".into()))
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
}
