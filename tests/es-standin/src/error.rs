//! The Elasticsearch error model: one `EsError` value renders as the top-level REST envelope
//! (`{"error":{"root_cause":[...],"type","reason",...},"status":N}`), as the bulk-item form (no
//! `root_cause`) or as the msearch-item form. Constructors here carry the exact type names and
//! reason formats of es-contract.md §1.6; handlers elsewhere only pick one.

use serde_json::{json, Map, Value};

/// An Elasticsearch exception as it appears on the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct EsError {
    /// HTTP status of the exception.
    pub status: u16,
    /// Snake-case exception type, e.g. `index_not_found_exception`.
    pub kind: String,
    /// Human readable reason, formatted exactly as ES does.
    pub reason: String,
    /// Metadata flattened into the error object (`index`, `shard`, `resource.id`, ...).
    pub meta: Vec<(String, Value)>,
    /// Nested cause.
    pub caused_by: Option<Box<EsError>>,
    /// Response headers that come with the error (e.g. `WWW-Authenticate`).
    pub headers: Vec<(String, String)>,
}

/// Result alias used by every handler.
pub type EsResult<T> = Result<T, EsError>;

impl EsError {
    /// A new error with a status, type and reason.
    pub fn new(status: u16, kind: &str, reason: impl Into<String>) -> EsError {
        EsError {
            status,
            kind: kind.to_string(),
            reason: reason.into(),
            meta: Vec::new(),
            caused_by: None,
            headers: Vec::new(),
        }
    }

    /// Adds a metadata key.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> EsError {
        self.meta.push((key.to_string(), value.into()));
        self
    }

    /// Sets the cause.
    pub fn caused_by(mut self, cause: EsError) -> EsError {
        self.caused_by = Some(Box::new(cause));
        self
    }

    /// 404 `index_not_found_exception` naming the index as given (alias or pattern).
    pub fn index_not_found(name: &str) -> EsError {
        EsError::new(
            404,
            "index_not_found_exception",
            format!("no such index [{name}]"),
        )
        .with("resource.type", "index_or_alias")
        .with("resource.id", name)
        .with("index_uuid", "_na_")
        .with("index", name)
    }

    /// 409 `version_conflict_engine_exception`; `tail` follows `[<id>]: version conflict, `.
    pub fn version_conflict(id: &str, tail: &str, index: &str, uuid: &str) -> EsError {
        EsError::new(
            409,
            "version_conflict_engine_exception",
            format!("[{id}]: version conflict, {tail}"),
        )
        .with("index_uuid", uuid)
        .with("shard", "0")
        .with("index", index)
    }

    /// 404 `document_missing_exception`.
    pub fn document_missing(id: &str, index: &str, uuid: &str) -> EsError {
        EsError::new(
            404,
            "document_missing_exception",
            format!("[{id}]: document missing"),
        )
        .with("index_uuid", uuid)
        .with("shard", "0")
        .with("index", index)
    }

    /// 400 `illegal_argument_exception`.
    pub fn illegal_argument(reason: impl Into<String>) -> EsError {
        EsError::new(400, "illegal_argument_exception", reason)
    }

    /// 400 `action_request_validation_exception` with numbered messages.
    pub fn validation(messages: &[String]) -> EsError {
        let mut reason = String::from("Validation Failed: ");
        for (i, m) in messages.iter().enumerate() {
            reason.push_str(&format!("{}: {};", i + 1, m));
        }
        EsError::new(400, "action_request_validation_exception", reason)
    }

    /// 400 `parsing_exception` (query DSL).
    pub fn parsing(reason: impl Into<String>) -> EsError {
        EsError::new(400, "parsing_exception", reason)
    }

    /// 400 `x_content_parse_exception` for a body that is not valid JSON.
    pub fn bad_json(err: &serde_json::Error) -> EsError {
        EsError::new(
            400,
            "x_content_parse_exception",
            format!("[{}:{}] {}", err.line(), err.column(), err),
        )
    }

    /// 400 `status_exception` (ElasticsearchStatusException) with a given status.
    pub fn status_exception(status: u16, reason: impl Into<String>) -> EsError {
        EsError::new(status, "status_exception", reason)
    }

    /// 404 `resource_not_found_exception`.
    pub fn resource_not_found(reason: impl Into<String>) -> EsError {
        EsError::new(404, "resource_not_found_exception", reason)
    }

    /// 400 `search_phase_execution_exception` "all shards failed" wrapping one shard failure;
    /// the HTTP status is the cause's.
    pub fn all_shards_failed(cause: EsError, index: &str, node: &str) -> EsError {
        let status = cause.status;
        let failed = json!([{
            "shard": 0,
            "index": index,
            "node": node,
            "reason": cause.item_body(),
        }]);
        let mut e = EsError::new(
            status,
            "search_phase_execution_exception",
            "all shards failed",
        )
        .with("phase", "query")
        .with("grouped", true)
        .with("failed_shards", failed);
        e.caused_by = Some(Box::new(cause));
        e
    }

    /// 401 `security_exception` with the three `WWW-Authenticate` challenges ES sends.
    pub fn unauthenticated(additional: Option<String>) -> EsError {
        let challenges = [
            "Basic realm=\"security\", charset=\"UTF-8\"",
            "Bearer realm=\"security\"",
            "ApiKey",
        ];
        let mut e = EsError::new(
            401,
            "security_exception",
            "unable to authenticate with provided credentials and anonymous access is not allowed for this request",
        );
        if let Some(a) = additional {
            e = e.with("additional_unsuccessful_credentials", a);
        }
        e = e.with("header", json!({ "WWW-Authenticate": challenges }));
        for c in challenges {
            e.headers
                .push(("WWW-Authenticate".to_string(), c.to_string()));
        }
        e
    }

    /// 401 `security_exception` "missing authentication credentials for REST request [...]".
    pub fn missing_credentials(uri: &str) -> EsError {
        let mut e = EsError::unauthenticated(None);
        e.reason = format!("missing authentication credentials for REST request [{uri}]");
        e
    }

    /// 403 `security_exception`.
    pub fn forbidden(reason: impl Into<String>) -> EsError {
        EsError::new(403, "security_exception", reason)
    }

    /// 429 `es_rejected_execution_exception`.
    pub fn rejected(reason: impl Into<String>) -> EsError {
        EsError::new(429, "es_rejected_execution_exception", reason)
    }

    /// The object form without `root_cause` (bulk items, shard failures, `caused_by`).
    pub fn item_body(&self) -> Value {
        let mut m = Map::new();
        m.insert("type".into(), Value::String(self.kind.clone()));
        m.insert("reason".into(), Value::String(self.reason.clone()));
        for (k, v) in &self.meta {
            m.insert(k.clone(), v.clone());
        }
        if let Some(c) = &self.caused_by {
            m.insert("caused_by".into(), c.item_body());
        }
        Value::Object(m)
    }

    /// The innermost causes (`root_cause`), each without `caused_by`.
    fn root_causes(&self) -> Vec<Value> {
        let mut cur = self;
        while let Some(c) = &cur.caused_by {
            cur = c;
        }
        let mut m = Map::new();
        m.insert("type".into(), Value::String(cur.kind.clone()));
        m.insert("reason".into(), Value::String(cur.reason.clone()));
        for (k, v) in &cur.meta {
            if cur.kind == "search_phase_execution_exception" {
                continue;
            }
            m.insert(k.clone(), v.clone());
        }
        vec![Value::Object(m)]
    }

    /// The `error` object with `root_cause` (top level and msearch items).
    pub fn full_body(&self) -> Value {
        let mut body = self.item_body();
        if let Value::Object(m) = &mut body {
            m.insert("root_cause".into(), Value::Array(self.root_causes()));
        }
        body
    }

    /// The whole top-level envelope `{"error":{...},"status":N}`.
    pub fn envelope(&self) -> Value {
        json!({ "error": self.full_body(), "status": self.status })
    }
}

impl std::fmt::Display for EsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} [{}]: {}", self.status, self.kind, self.reason)
    }
}

impl std::error::Error for EsError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_not_found_envelope_matches_contract() {
        let e = EsError::index_not_found(".fleet-agents").envelope();
        let expected: Value = serde_json::from_str(
            r#"{"error":{"root_cause":[{"type":"index_not_found_exception","reason":"no such index [.fleet-agents]","resource.type":"index_or_alias","resource.id":".fleet-agents","index_uuid":"_na_","index":".fleet-agents"}],"type":"index_not_found_exception","reason":"no such index [.fleet-agents]","resource.type":"index_or_alias","resource.id":".fleet-agents","index_uuid":"_na_","index":".fleet-agents"},"status":404}"#,
        )
        .unwrap();
        assert_eq!(e, expected);
    }

    #[test]
    fn unauthenticated_has_challenges_in_body_and_headers() {
        let e = EsError::unauthenticated(Some("API key: api key is expired".into()));
        assert_eq!(e.headers.len(), 3);
        let env = e.envelope();
        assert_eq!(env["status"], 401);
        assert_eq!(
            env["error"]["root_cause"][0]["header"]["WWW-Authenticate"][2],
            "ApiKey"
        );
    }

    #[test]
    fn search_phase_failure_takes_status_of_cause() {
        let e = EsError::all_shards_failed(EsError::illegal_argument("x"), "i", "n");
        assert_eq!(e.status, 400);
        let b = e.envelope();
        assert_eq!(
            b["error"]["caused_by"]["type"],
            "illegal_argument_exception"
        );
        assert_eq!(
            b["error"]["root_cause"][0]["type"],
            "illegal_argument_exception"
        );
        assert_eq!(b["error"]["failed_shards"][0]["reason"]["reason"], "x");
    }
}
