//! `Elastic-Api-Version` negotiation (fleet-protocol.md §1.6): a date-shaped value from the
//! supported list is echoed; a malformed or unsupported one is a 400 that still names the version
//! this server speaks, so an agent can tell it was asked to downgrade.

use super::errors::ApiError;
use crate::http::{Request, Response};

/// The API versions this server supports, oldest first.
pub const SUPPORTED: &[&str] = &["2023-06-01"];
/// The version answered when the request names none.
pub const DEFAULT: &str = "2023-06-01";

/// The version to echo, or the complete 400 response.
pub fn negotiate(req: &Request) -> Result<&'static str, Response> {
    let Some(raw) = req.header("elastic-api-version") else {
        return Ok(DEFAULT);
    };
    let text = String::from_utf8_lossy(raw);
    if !is_date_shaped(raw) {
        return Err(reject(ApiError::InvalidApiVersionFormat(text.into_owned())));
    }
    match SUPPORTED.iter().find(|v| v.as_bytes() == raw) {
        Some(v) => Ok(v),
        None => Err(reject(ApiError::UnsupportedApiVersion(text.into_owned()))),
    }
}

fn reject(err: ApiError) -> Response {
    err.to_response()
        .with_header("Elastic-Api-Version", DEFAULT)
}

/// `^[0-9]{4}-[0-9]{2}-[0-9]{2}$`
fn is_date_shaped(v: &[u8]) -> bool {
    v.len() == 10
        && v.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

    fn with_version(v: &str) -> Request {
        Request {
            peer: None,
            tls: false,
            method: Method::Get,
            path: "/api/status".into(),
            query: None,
            minor_version: 1,
            headers: vec![("elastic-api-version".into(), v.as_bytes().to_vec())],
            body: Vec::new(),
            keep_alive: true,
        }
    }

    fn body(r: &Response) -> serde_json::Value {
        serde_json::from_slice(r.body_bytes()).unwrap()
    }

    #[test]
    fn supported_version_is_echoed() {
        assert_eq!(
            negotiate(&with_version("2023-06-01")).unwrap(),
            "2023-06-01"
        );
    }

    #[test]
    fn malformed_version_is_400_with_spec_message() {
        let r = negotiate(&with_version("2023-6-1")).unwrap_err();
        assert_eq!(r.status, 400);
        assert_eq!(r.header("elastic-api-version"), Some("2023-06-01"));
        let b = body(&r);
        assert_eq!(b["error"], "ErrInvalidAPIVersionFormat");
        assert_eq!(
            b["message"],
            "received \"2023-6-1\", expected a valid date string formatted as YYYY-MM-DD. invalid version format"
        );
    }

    #[test]
    fn unsupported_version_is_400_with_spec_message() {
        let r = negotiate(&with_version("2099-01-01")).unwrap_err();
        let b = body(&r);
        assert_eq!(b["statusCode"], 400);
        assert_eq!(b["error"], "ErrUnsupportedAPIVersion");
        assert_eq!(
            b["message"],
            "received \"2099-01-01\", is not supported. supported versions are: [2023-06-01] version is not supported"
        );
    }
}
