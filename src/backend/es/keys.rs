//! The API-key calls of es-contract.md §2.2 over one [`Client`], shared by the store's own
//! cluster (`store.rs`) and the remote clusters of `remote_elasticsearch` outputs (`remote.rs`):
//!
//! | call | request |
//! |---|---|
//! | [`create`] | `PUT /_security/api_key?refresh=false` (Go's body field order) |
//! | [`record`] / [`roles`] | `GET /_security/api_key?id=<id>&owner=true` |
//! | [`update_roles`] | `POST /_security/api_key/_bulk_update` |
//! | [`invalidate`] | `DELETE /_security/api_key` `{"ids":[..],"owner":true}` |

use serde_json::{json, Value};

use super::bodies::{self, encode};
use super::client::{error_type, item_error, Client, Method, Req};
use crate::backend::{ApiKey, NewApiKey, StoreError};

/// A response that is not the shape the contract promises.
pub fn decode_failed(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Failed {
        status: 500,
        detail: format!("{what} does not decode: {e}"),
    }
}

/// Creates a key.
pub fn create(client: &Client, key: &NewApiKey) -> Result<ApiKey, StoreError> {
    let body = bodies::create_api_key(&key.name, &key.role_descriptors, &key.metadata);
    let req = Req::new(Method::Put, "/_security/api_key?refresh=false").raw(body);
    let v = client.call(&req, &[])?.json();
    match (v["id"].as_str(), v["api_key"].as_str()) {
        (Some(id), Some(secret)) => Ok(ApiKey {
            id: id.to_owned(),
            secret: secret.to_owned(),
        }),
        _ => Err(decode_failed("create API key response", "no id or api_key")),
    }
}

/// The key's record (`api_keys[0]`), `None` when unknown.
pub fn record(client: &Client, id: &str) -> Result<Option<Value>, StoreError> {
    let path = format!("/_security/api_key?id={}&owner=true", encode(id));
    let resp = client.call(&Req::new(Method::Get, path), &[404])?;
    if resp.status == 404 {
        return Ok(None);
    }
    let mut v = resp.json();
    Ok(v.pointer_mut("/api_keys/0").map(Value::take))
}

/// The key's role descriptors, `None` when unknown.
pub fn roles(client: &Client, id: &str) -> Result<Option<Value>, StoreError> {
    Ok(record(client, id)?.map(|r| {
        r.get("role_descriptors")
            .cloned()
            .unwrap_or_else(|| json!({}))
    }))
}

/// Replaces the key's role descriptors; `NotFound` for an unknown key.
pub fn update_roles(client: &Client, id: &str, roles: &Value) -> Result<(), StoreError> {
    let req = Req::new(Method::Post, "/_security/api_key/_bulk_update")
        .json(&bodies::bulk_update_api_key(id, roles));
    let v = client.call(&req, &[])?.json();
    match v.pointer("/errors/details").and_then(|d| d.get(id)) {
        None => Ok(()),
        Some(e) if error_type(e).as_deref() == Some("resource_not_found_exception") => {
            Err(StoreError::NotFound)
        }
        Some(e) => Err(item_error(400, e)),
    }
}

/// Invalidates keys (nothing to do for none).
pub fn invalidate(client: &Client, ids: &[String]) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let req =
        Req::new(Method::Delete, "/_security/api_key").json(&bodies::invalidate_api_keys(ids));
    client.call(&req, &[]).map(|_| ())
}
