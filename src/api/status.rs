//! `GET /api/status` (fleet-protocol.md §7): the self-monitor state, 200 only when healthy.
//!
//! This is the unauthenticated short form; the long form with the version block needs API-key
//! validation against the store and arrives with the agent protocol.

use crate::core::Health;
use crate::http::Response;

/// The status response for the given health.
pub fn handle(health: Health) -> Response {
    let body = serde_json::json!({"name": "fleet-server", "status": health.as_str()});
    Response::json(health.http_status(), &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_is_200_with_upper_case_state() {
        let r = handle(Health::Healthy);
        assert_eq!(r.status, 200);
        let v: serde_json::Value = serde_json::from_slice(r.body_bytes()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"name":"fleet-server","status":"HEALTHY"})
        );
    }

    #[test]
    fn anything_else_is_503_with_the_same_body_shape() {
        for h in [
            Health::Starting,
            Health::Degraded,
            Health::Failed,
            Health::Stopping,
        ] {
            let r = handle(h);
            assert_eq!(r.status, 503);
            let v: serde_json::Value = serde_json::from_slice(r.body_bytes()).unwrap();
            assert_eq!(v["status"], h.as_str());
            assert_eq!(v["name"], "fleet-server");
        }
    }
}
