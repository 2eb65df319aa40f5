//! `GET /api/agents/upgrades/{major}.{minor}.{patch}/pgp-public-key` (fleet-protocol.md §8,
//! table row 25), sans-IO: no authentication; the version parts must be integers (else 500, as
//! the generated parameter binder answers before the handler runs) and are otherwise ignored;
//! the request must have come over TLS (plain HTTP → 501 `ErrTLSRequired`). Reading the key
//! (mode 0600) or fetching it upstream is `files::pgp`, on a backend worker; its answer is
//! [`answer`].

use crate::files::pgp::PgpError;
use crate::http::{error_response, Response};

/// The path's prefix and suffix around the version segment.
const PREFIX: &str = "/api/agents/upgrades/";
const SUFFIX: &str = "/pgp-public-key";

/// The version segment of a PGP key path (`9.6.0`), when the path is one: three dot-separated
/// parts, as the router's `{major}.{minor}.{patch}` pattern needs.
pub fn version_segment(path: &str) -> Option<&str> {
    let version = path.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    let parts: Vec<&str> = version.splitn(3, '.').collect();
    (parts.len() == 3 && !version.contains('/') && parts.iter().all(|p| !p.is_empty()))
        .then_some(version)
}

/// Checks the version parts as Go's binder does; the 500 it answers for a non-integer part.
pub fn check_version(version: &str) -> Result<(), Response> {
    for (name, part) in ["major", "minor", "patch"]
        .iter()
        .zip(version.splitn(3, '.'))
    {
        if part.parse::<i64>().is_err() {
            return Err(super::errors::respond(&super::ApiError::Internal(format!(
                "Invalid format for parameter {name}: error binding string parameter: strconv.ParseInt: parsing {part:?}: invalid syntax"
            ))));
        }
    }
    Ok(())
}

/// Row 25: the endpoint over plain HTTP.
pub fn tls_required() -> Response {
    error_response(
        501,
        "ErrTLSRequired",
        "server must run with tls to use this endpoint",
    )
}

/// The 200 with the armored key, or the 500 of a key that cannot be served.
pub fn answer(key: Result<Vec<u8>, String>) -> Response {
    match key {
        Ok(key) => Response::new(200)
            .with_header("Content-Type", "text/plain; charset=utf-8")
            .with_body(crate::http::Body::Bytes(key)),
        Err(reason) => {
            log::error!("pgp key: {reason}");
            super::errors::respond(&super::ApiError::Internal(reason))
        }
    }
}

/// What a worker reports for a key lookup (the error as the text the 500 carries).
pub fn lookup(source: &crate::files::pgp::PgpSource) -> Result<Vec<u8>, String> {
    source.key().map_err(|e: PgpError| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_segments_and_their_parts() {
        let path = |v: &str| format!("{PREFIX}{v}{SUFFIX}");
        assert_eq!(version_segment(&path("9.6.0")), Some("9.6.0"));
        assert_eq!(version_segment(&path("a.b.c")), Some("a.b.c"));
        assert_eq!(version_segment(&path("9.6")), None);
        assert_eq!(version_segment(&path("9..0")), None);
        assert_eq!(version_segment(&path("9.6.0/x")), None);
        assert_eq!(version_segment("/api/agents/upgrades/9.6.0/other"), None);
        assert!(check_version("9.6.0").is_ok());
        for bad in ["a.6.0", "9.x.0", "9.6.0-SNAPSHOT", "9.6.0.1"] {
            let r = check_version(bad).unwrap_err();
            assert_eq!(r.status, 500, "{bad}");
        }
        let r = tls_required();
        assert_eq!(r.status, 501);
        let body: serde_json::Value = serde_json::from_slice(r.body_bytes()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"statusCode":501,"error":"ErrTLSRequired","message":"server must run with tls to use this endpoint"})
        );
    }
}
