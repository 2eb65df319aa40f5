//! The management API's operations, run on backend workers over [`Admin`]: the dispatch of
//! each route to its module (`agents.rs`, `actions.rs`, `policies.rs`), enrollment tokens and
//! snapshots here, the failures' Kibana error bodies (what they share is in `admin.rs`).

use std::time::SystemTime;

use serde_json::{json, Value};

use super::admin::{page_of, Admin, AdminRequest, Answer, Failure};
use super::{actions, agents, policies, Route};
use crate::backend::StoreError;
use crate::model::EnrollmentKey;

/// Runs a management request: status and body.
pub fn execute(admin: &dyn Admin, req: &AdminRequest, now: SystemTime) -> (u16, Value) {
    match run(admin, req, now) {
        Ok(ok) => ok,
        Err(Failure::NotFound(what)) => (
            404,
            json!({"statusCode": 404, "error": "Not Found", "message": what}),
        ),
        Err(Failure::Invalid(why)) => (
            400,
            json!({"statusCode": 400, "error": "Bad Request", "message": why}),
        ),
        Err(Failure::Conflict(why)) => (
            409,
            json!({"statusCode": 409, "error": "Conflict", "message": why}),
        ),
        Err(Failure::Store(e)) => (
            503,
            json!({"statusCode": 503, "error": "Service Unavailable", "message": e.to_string()}),
        ),
    }
}

/// Kibana's enrollment API key item.
fn token_view(k: &EnrollmentKey) -> Value {
    json!({"id": k.api_key_id, "api_key_id": k.api_key_id, "api_key": k.api_key, "name": k.name,
           "policy_id": k.policy_id, "active": k.active, "created_at": k.created_at})
}

fn run(admin: &dyn Admin, req: &AdminRequest, now: SystemTime) -> Answer {
    match &req.route {
        Route::ListAgents
        | Route::GetAgent(_)
        | Route::UpdateAgent(_)
        | Route::DeleteAgent(_)
        | Route::Reassign(_)
        | Route::Unenroll(_)
        | Route::AgentTags
        | Route::AgentStatusCounts
        | Route::Bulk(_) => agents::run(admin, req, now),
        Route::Upgrade(_)
        | Route::RequestDiagnostics(_)
        | Route::Migrate(_)
        | Route::PrivilegeLevelChange(_)
        | Route::AgentAction(_)
        | Route::ActionStatus
        | Route::CancelAction(_)
        | Route::ActionResults(_) => actions::run(admin, req, now),
        Route::ListPolicies
        | Route::GetPolicy(_)
        | Route::FullPolicy(_)
        | Route::CreatePolicy
        | Route::UpdatePolicy(_)
        | Route::DeletePolicy
        | Route::UploadPolicy(_) => policies::run(admin, req, now),
        Route::ListTokens => {
            let items: Vec<Value> = admin
                .list_enrollment_keys()?
                .iter()
                .map(token_view)
                .collect();
            let (status, mut body) = page_of(items, &req.params, 10_000)?;
            // Kibana still sends the deprecated `list` beside `items`.
            body["list"] = body["items"].clone();
            Ok((status, body))
        }
        Route::GetToken(id) => {
            let record = admin
                .list_enrollment_keys()?
                .into_iter()
                .find(|k| k.api_key_id == *id)
                .ok_or_else(|| Failure::NotFound(format!("enrollment token {id} not found")))?;
            Ok((200, json!({"item": token_view(&record)})))
        }
        Route::CreateToken => {
            let Some(policy_id) = req
                .body
                .get("policy_id")
                .and_then(Value::as_str)
                .filter(|p| !p.is_empty())
            else {
                return Err(Failure::Invalid("\"policy_id\" is required".into()));
            };
            if !admin
                .store()
                .latest_policies()?
                .iter()
                .any(|p| p.policy_id == policy_id)
            {
                return Err(Failure::Invalid(format!(
                    "policy {policy_id} does not exist"
                )));
            }
            let name = req
                .body
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("Default");
            let key = admin.add_enrollment_key(policy_id, name)?;
            let record = admin
                .list_enrollment_keys()?
                .into_iter()
                .find(|k| k.api_key_id == key.id)
                .ok_or_else(|| Failure::NotFound("the new token vanished".into()))?;
            Ok((
                200,
                json!({"item": token_view(&record), "action": "created"}),
            ))
        }
        Route::RevokeToken(id) => {
            admin.revoke_enrollment_key(id).map_err(|e| match e {
                StoreError::NotFound => {
                    Failure::NotFound(format!("enrollment token {id} not found"))
                }
                other => Failure::Store(other),
            })?;
            Ok((200, json!({"action": "deleted"})))
        }
        Route::AgentUploads(id) => Ok(super::files::list(admin, Some(id))),
        Route::ListFiles => Ok(super::files::list(admin, None)),
        Route::PlaceBegin => Ok(super::files::place_begin(admin, &req.body, now)),
        Route::PlacePart(part) => Ok(super::files::place_part(admin, part)),
        Route::PlaceComplete(id) => Ok(super::files::place_complete(admin, id)),
        Route::ListPlaced => Ok(super::files::list_placed(admin)),
        Route::DownloadFile(_) => Err(Failure::Invalid(
            "a file download is answered by super::files::download".into(),
        )),
        Route::Snapshot => {
            let path = admin.snapshot().map_err(Failure::Invalid)?;
            Ok((200, json!({"snapshot": path.to_string_lossy()})))
        }
        Route::StatusHistory => Ok((200, super::history::answer(admin, now))),
        Route::Enrollment => {
            let e = admin
                .enrollment()
                .ok_or_else(|| Failure::NotFound("the Fleet Server URL is not known yet".into()))?;
            Ok((
                200,
                json!({"fleet_server_url": e.url, "install_command": e.install_command("{TOKEN}")}),
            ))
        }
        // The engine answers it from its own figures; it never reaches a worker.
        Route::ServerHealth => Err(Failure::NotFound(
            "the server's health is answered by the event loop".into(),
        )),
    }
}

impl crate::backend::admin::AdminWork for AdminRequest {
    fn revokes(&self) -> Option<&str> {
        match &self.route {
            Route::RevokeToken(id) => Some(id),
            _ => None,
        }
    }

    fn run(&self, admin: &dyn Admin, now: SystemTime) -> (u16, Value) {
        execute(admin, self, now)
    }

    fn respond(&self, admin: &dyn Admin) -> Option<crate::http::Response> {
        matches!(self.route, Route::DownloadFile(_))
            .then(|| super::files::answer(admin, &self.route))
    }
}
