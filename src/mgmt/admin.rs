//! What the management API's operations share: the [`Admin`] interface they run over, the
//! authenticated [`AdminRequest`], the [`Failure`]s they decide on and Kibana's paging. The
//! route modules (`agents.rs`, `actions.rs`, `policies.rs`) and the dispatch in `ops.rs` use
//! it; it names none of them.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::query::Params;
use super::Route;
use crate::backend::StoreError;
use crate::model::Agent;

pub use crate::backend::admin::Admin;

/// One management request, authenticated and routed.
#[derive(Clone, Debug, PartialEq)]
pub struct AdminRequest {
    /// The route.
    pub route: Route,
    /// The JSON body (`null` when empty).
    pub body: Value,
    /// The query parameters.
    pub params: Params,
    /// Checkin state the event loop has not written yet (it batches checkin writes), per agent:
    /// agent listings merge it over the store's documents so a checkin shows at once. Filled by
    /// the event loop for the routes of [`Self::reads_checkin_state`].
    pub pending_checkins: HashMap<String, Map<String, Value>>,
}

impl AdminRequest {
    /// Whether the answer shows agents' checkin state (and so needs [`Self::pending_checkins`]).
    pub fn reads_checkin_state(&self) -> bool {
        matches!(
            self.route,
            Route::ListAgents | Route::GetAgent(_) | Route::AgentStatusCounts | Route::ActionStatus
        )
    }
}

/// The agent as it will be once the pending checkin state is written (the store's partial
/// update semantics); unchanged when there is none or the merge does not make an agent.
pub(super) fn with_pending(agent: Agent, pending: &HashMap<String, Map<String, Value>>) -> Agent {
    let Some(fields) = pending.get(&agent.id) else {
        return agent;
    };
    let Ok(Value::Object(mut source)) = serde_json::to_value(&agent) else {
        return agent;
    };
    crate::backend::memory::merge(&mut source, fields);
    match serde_json::from_value::<Agent>(Value::Object(source)) {
        Ok(mut merged) => {
            merged.id = agent.id;
            merged
        }
        Err(_) => agent,
    }
}

/// Why an operation failed, as the caller decides on it.
pub(super) enum Failure {
    /// 404.
    NotFound(String),
    /// 400.
    Invalid(String),
    /// 409.
    Conflict(String),
    /// 503.
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Failure::NotFound("not found".into()),
            other => Failure::Store(other),
        }
    }
}

/// What an operation answers.
pub(super) type Answer = Result<(u16, Value), Failure>;

/// A page of `items` as Kibana lists: `{items, total, page, perPage}`.
pub(super) fn page_of(items: Vec<Value>, params: &Params, default_per_page: usize) -> Answer {
    page_with(items, params, default_per_page, |v| v)
}

/// [`page_of`] with each shown item made by `view`: only the page's items are turned into
/// JSON (a 50-agent page of 10,000 agents makes 50 views, not 10,000).
pub(super) fn page_with<T>(
    items: Vec<T>,
    params: &Params,
    default_per_page: usize,
    view: impl Fn(T) -> Value,
) -> Answer {
    let page = params.number("page", 1).map_err(Failure::Invalid)?;
    let per_page = params
        .number("perPage", default_per_page)
        .map_err(Failure::Invalid)?;
    let total = items.len();
    let shown: Vec<Value> = items
        .into_iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .map(view)
        .collect();
    Ok((
        200,
        json!({"items": shown, "total": total, "page": page, "perPage": per_page}),
    ))
}
