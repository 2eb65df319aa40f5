//! `GET /api/status` (fleet-protocol.md §7): the self-monitor state, 200 only when healthy.
//!
//! Without a valid API key it is the short form; with any valid, enabled key (an agent's access
//! key included) the long form adds the version block. An invalid key never changes the status
//! code: it just gets the short form.

use super::user_agent::SERVER_VERSION_STR;
use crate::core::Health;
use crate::http::Response;

/// The status response for the given health; `long` adds the version block.
pub fn handle(health: Health, long: bool) -> Response {
    let mut body = serde_json::json!({"name": "fleet-server", "status": health.as_str()});
    if long {
        body["version"] = serde_json::json!({
            "number": SERVER_VERSION_STR,
            "build_hash": crate::build_info::BUILD_HASH,
            "build_time": crate::build_info::BUILD_TIME,
        });
    }
    Response::json(health.http_status(), &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_is_200_with_upper_case_state() {
        let r = handle(Health::Healthy, false);
        assert_eq!(r.status, 200);
        let v: serde_json::Value = serde_json::from_slice(r.body_bytes()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"name":"fleet-server","status":"HEALTHY"})
        );
    }

    #[test]
    fn long_form_has_the_version_block() {
        let r = handle(Health::Healthy, true);
        let v: serde_json::Value = serde_json::from_slice(r.body_bytes()).unwrap();
        assert_eq!(v["version"]["number"], SERVER_VERSION_STR);
        assert_eq!(v["version"]["build_hash"], crate::build_info::BUILD_HASH);
        assert_eq!(v["version"]["build_time"], crate::build_info::BUILD_TIME);
    }

    #[test]
    fn anything_else_is_503_with_the_same_body_shape() {
        for h in [
            Health::Starting,
            Health::Degraded,
            Health::Failed,
            Health::Stopping,
        ] {
            let r = handle(h, false);
            assert_eq!(r.status, 503);
            let v: serde_json::Value = serde_json::from_slice(r.body_bytes()).unwrap();
            assert_eq!(v["status"], h.as_str());
            assert_eq!(v["name"], "fleet-server");
        }
    }
}
