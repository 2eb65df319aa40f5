//! The User-Agent rule of enroll and checkin (fleet-protocol.md §1.5): `Elastic Agent v<semver>`,
//! at least 7.13, and not newer than this server except in the patch number.

use super::errors::ApiError;
use crate::http::Request;

/// The version this server announces; it caps which agents may connect.
pub const SERVER_VERSION: (u64, u64, u64) = (9, 6, 0);
/// The same, as text.
pub const SERVER_VERSION_STR: &str = "9.6.0";

/// Validates the User-Agent and returns the normalised agent version (`9.2.1`).
pub fn agent_version(req: &Request) -> Result<String, ApiError> {
    let Some(raw) = req.header_str("user-agent") else {
        // The generated parameter binder's answer (fleet-protocol.md §13.1 #6).
        return Err(ApiError::Internal(
            "Header parameter User-Agent is required, but not found".into(),
        ));
    };
    let lower = raw.to_ascii_lowercase();
    let Some(rest) = lower.strip_prefix("elastic agent ") else {
        return Err(ApiError::InvalidUserAgent);
    };
    let core = rest.split('-').next().unwrap_or("").trim();
    let core = core.strip_prefix('v').unwrap_or(core);
    let mut parts = core.split('.');
    let mut next = || -> Result<u64, ApiError> {
        match parts.next() {
            None => Ok(0),
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse().map_err(|_| ApiError::InvalidUserAgent)
            }
            Some(_) => Err(ApiError::InvalidUserAgent),
        }
    };
    let version = (next()?, next()?, next()?);
    if parts.next().is_some() {
        return Err(ApiError::InvalidUserAgent);
    }
    let (major, minor, _) = SERVER_VERSION;
    if version < (7, 13, 0) || (version.0, version.1) > (major, minor) {
        return Err(ApiError::UnsupportedVersion);
    }
    Ok(format!("{}.{}.{}", version.0, version.1, version.2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

    fn ua(value: &str) -> Result<String, ApiError> {
        agent_version(&Request {
            method: Method::Post,
            path: "/".into(),
            query: None,
            minor_version: 1,
            headers: vec![("user-agent".into(), value.as_bytes().to_vec())],
            body: Vec::new(),
            keep_alive: true,
        })
    }

    #[test]
    fn accepted_forms_normalise() {
        assert_eq!(ua("Elastic Agent v9.2.1").unwrap(), "9.2.1");
        assert_eq!(ua("elastic agent 8.15.0-SNAPSHOT").unwrap(), "8.15.0");
        assert_eq!(
            ua("Elastic Agent v9.6.99").unwrap(),
            "9.6.99",
            "newer patch is fine"
        );
        assert_eq!(ua("Elastic Agent v8").unwrap(), "8.0.0");
        assert_eq!(ua("Elastic Agent 7.13").unwrap(), "7.13.0");
    }

    #[test]
    fn rejected_forms() {
        assert_eq!(ua("elastic-agent 9.0.0"), Err(ApiError::InvalidUserAgent));
        assert_eq!(ua(""), Err(ApiError::InvalidUserAgent));
        let missing = agent_version(&Request {
            method: Method::Post,
            path: "/".into(),
            query: None,
            minor_version: 1,
            headers: vec![],
            body: Vec::new(),
            keep_alive: true,
        });
        assert!(
            matches!(missing, Err(ApiError::Internal(_))),
            "missing header is the binder's 500"
        );
        assert_eq!(ua("Elastic Agent vX.1"), Err(ApiError::InvalidUserAgent));
        assert_eq!(
            ua("Elastic Agent v9.7.0"),
            Err(ApiError::UnsupportedVersion),
            "newer minor"
        );
        assert_eq!(
            ua("Elastic Agent v10.0.0"),
            Err(ApiError::UnsupportedVersion)
        );
        assert_eq!(
            ua("Elastic Agent v7.12.9"),
            Err(ApiError::UnsupportedVersion)
        );
    }
}
