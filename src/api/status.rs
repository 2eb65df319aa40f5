//! `GET /api/status` (fleet-protocol.md §7): the self-monitor state, 200 only when healthy.
//!
//! Without a valid API key it is the short form; with any valid, enabled key (an agent's access
//! key included) the long form adds the version block. An invalid key never changes the status
//! code: it just gets the short form.

use super::health::Health;
use crate::http::Response;
use crate::server_version::ServerVersion;

/// The status response for the given health; `long` adds the version block with the version
/// this server claims.
pub fn handle(health: Health, long: bool, version: ServerVersion) -> Response {
    let mut body = serde_json::json!({"name": "fleet-server", "status": health.as_str()});
    if long {
        body["version"] = serde_json::json!({
            "number": version.to_string(),
            "build_hash": crate::build_info::BUILD_HASH,
            "build_time": crate::build_info::BUILD_TIME,
        });
    }
    Response::json(health.http_status(), &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server_version::BUILT_IN;

    #[test]
    fn healthy_is_200_with_upper_case_state() {
        let r = handle(Health::Healthy, false, BUILT_IN);
        assert_eq!(r.status, 200);
        let v: serde_json::Value = serde_json::from_slice(r.body_bytes()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"name":"fleet-server","status":"HEALTHY"})
        );
    }

    #[test]
    fn long_form_has_the_version_block() {
        let r = handle(Health::Healthy, true, BUILT_IN);
        let v: serde_json::Value = serde_json::from_slice(r.body_bytes()).unwrap();
        assert_eq!(v["version"]["number"], "9.6.0");
        let raised = ServerVersion::parse_override("9.7.1").unwrap();
        let r = handle(Health::Healthy, true, raised);
        let v: serde_json::Value = serde_json::from_slice(r.body_bytes()).unwrap();
        assert_eq!(v["version"]["number"], "9.7.1", "the claimed version");
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
            let r = handle(h, false, BUILT_IN);
            assert_eq!(r.status, 503);
            let v: serde_json::Value = serde_json::from_slice(r.body_bytes()).unwrap();
            assert_eq!(v["status"], h.as_str());
            assert_eq!(v["name"], "fleet-server");
        }
    }
}
