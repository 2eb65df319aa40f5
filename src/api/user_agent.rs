//! The User-Agent rule of enroll and checkin (fleet-protocol.md §1.5): `Elastic Agent v<semver>`,
//! at least 7.13, and not newer than the version this server claims ([`ServerVersion`], from the
//! configuration) except in the patch number.

use super::errors::ApiError;
use crate::backend::OpError;
use crate::http::Request;
use crate::server_version::ServerVersion;

/// Why a User-Agent is refused, with what the refusal's log line needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Missing or malformed: the error as answered.
    Invalid(OpError),
    /// A well-formed version outside what this server admits (the normalised version).
    Unsupported(String),
}

impl Refusal {
    /// The refusal as the backend answers it (after checking the key, §1.5).
    pub fn op_error(&self) -> OpError {
        match self {
            Refusal::Invalid(e) => e.clone(),
            Refusal::Unsupported(_) => OpError::UnsupportedVersion,
        }
    }

    /// The error the agent is answered with.
    pub fn error(&self) -> ApiError {
        ApiError::from(&self.op_error())
    }
}

/// Validates the User-Agent and returns the normalised agent version (`9.2.1`).
pub fn agent_version(req: &Request, server: ServerVersion) -> Result<String, ApiError> {
    check(req, server).map_err(|r| r.error())
}

/// [`agent_version`] keeping the refused version.
pub fn check(req: &Request, server: ServerVersion) -> Result<String, Refusal> {
    use OpError as E;
    use Refusal::Invalid;
    let Some(raw) = req.header_str("user-agent") else {
        // The generated parameter binder's answer (fleet-protocol.md §13.1 #6).
        return Err(Invalid(E::Refused(
            "Header parameter User-Agent is required, but not found".into(),
        )));
    };
    let lower = raw.to_ascii_lowercase();
    let Some(rest) = lower.strip_prefix("elastic agent ") else {
        return Err(Invalid(E::InvalidUserAgent));
    };
    let core = rest.split('-').next().unwrap_or("").trim();
    let core = core.strip_prefix('v').unwrap_or(core);
    let mut parts = core.split('.');
    let mut next = || -> Result<u64, Refusal> {
        match parts.next() {
            None => Ok(0),
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse().map_err(|_| Invalid(E::InvalidUserAgent))
            }
            Some(_) => Err(Invalid(E::InvalidUserAgent)),
        }
    };
    let version = (next()?, next()?, next()?);
    if parts.next().is_some() {
        return Err(Invalid(E::InvalidUserAgent));
    }
    let normalised = format!("{}.{}.{}", version.0, version.1, version.2);
    if version < (7, 13, 0) || !server.admits_agent(version) {
        return Err(Refusal::Unsupported(normalised));
    }
    Ok(normalised)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;
    use crate::server_version::BUILT_IN;

    fn ua(value: &str) -> Result<String, ApiError> {
        ua_with(value, BUILT_IN)
    }

    fn ua_with(value: &str, server: ServerVersion) -> Result<String, ApiError> {
        agent_version(
            &Request {
                peer: None,
                tls: false,
                method: Method::Post,
                path: "/".into(),
                query: None,
                minor_version: 1,
                headers: vec![("user-agent".into(), value.as_bytes().to_vec())],
                body: Vec::new(),
                keep_alive: true,
            },
            server,
        )
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
        let missing = agent_version(
            &Request {
                peer: None,
                tls: false,
                method: Method::Post,
                path: "/".into(),
                query: None,
                minor_version: 1,
                headers: vec![],
                body: Vec::new(),
                keep_alive: true,
            },
            BUILT_IN,
        );
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

    #[test]
    fn a_raised_server_version_admits_that_release() {
        let raised = ServerVersion::parse_override("9.7.0").unwrap();
        assert_eq!(ua_with("Elastic Agent v9.7.3", raised).unwrap(), "9.7.3");
        assert_eq!(
            ua_with("Elastic Agent v9.8.0", raised),
            Err(ApiError::UnsupportedVersion)
        );
        let req = |v: &str| Request {
            peer: None,
            tls: false,
            method: Method::Post,
            path: "/".into(),
            query: None,
            minor_version: 1,
            headers: vec![("user-agent".into(), v.as_bytes().to_vec())],
            body: Vec::new(),
            keep_alive: true,
        };
        assert_eq!(
            check(&req("Elastic Agent v9.7.0-SNAPSHOT"), BUILT_IN),
            Err(Refusal::Unsupported("9.7.0".into())),
            "the refusal keeps the normalised version for the log"
        );
        assert_eq!(
            check(&req("nope"), BUILT_IN),
            Err(Refusal::Invalid(OpError::InvalidUserAgent))
        );
    }
}
