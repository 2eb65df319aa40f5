//! Audit lines for refused requests (issue 18 item 6): every 401 (`agent-auth-refused`, or
//! `management-auth-refused` on the management listener) and every version refusal
//! (`UnsupportedVersion`, `InvalidUserAgent`, Kibana's API-version errors) is logged at `info`
//! with ECS field names, at most [`PER_WINDOW`] lines per client in each [`WINDOW`]; the next
//! line of a client after a full window says how many were left out. Nothing of the request
//! but its method and path is written: never a header, a query string or a body.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Lines per client per window.
pub(super) const PER_WINDOW: u32 = 5;

/// The rate-limit window.
pub(super) const WINDOW: Duration = Duration::from_secs(60);

/// Clients remembered at most; past it, those whose window is over are forgotten.
const MAX_CLIENTS: usize = 4096;

/// `error` members of the answers that are version refusals.
const VERSION_ERRORS: [&str; 4] = [
    "UnsupportedVersion",
    "InvalidUserAgent",
    "ErrUnsupportedAPIVersion",
    "ErrInvalidAPIVersionFormat",
];

/// A refused request, as the audit line names it.
pub(super) struct Refused<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub peer: Option<IpAddr>,
    pub status: u16,
    pub body: &'a [u8],
    pub took: Duration,
    /// On the management listener (`management-auth-refused`) rather than the agents'.
    pub management: bool,
}

#[derive(Debug)]
struct Window {
    began: Instant,
    logged: u32,
    left_out: u64,
}

/// The per-client budget of audit lines.
#[derive(Debug, Default)]
pub(super) struct Refusals {
    clients: HashMap<Option<IpAddr>, Window>,
}

impl Refusals {
    /// The audit line for `r` at `now`, if it is a refusal and its client's budget allows it.
    pub(super) fn line(&mut self, r: &Refused<'_>, now: Instant) -> Option<String> {
        let action = match r.status {
            401 if r.management => "management-auth-refused",
            401 => "agent-auth-refused",
            400 if VERSION_ERRORS.contains(&error_of(r.body).0.as_str()) => "agent-version-refused",
            _ => return None,
        };
        if self.clients.len() >= MAX_CLIENTS && !self.clients.contains_key(&r.peer) {
            self.clients
                .retain(|_, w| now.saturating_duration_since(w.began) < WINDOW);
        }
        let window = self.clients.entry(r.peer).or_insert(Window {
            began: now,
            logged: 0,
            left_out: 0,
        });
        let mut left_out = 0;
        if now.saturating_duration_since(window.began) >= WINDOW {
            left_out = window.left_out;
            *window = Window {
                began: now,
                logged: 0,
                left_out: 0,
            };
        }
        if window.logged >= PER_WINDOW {
            window.left_out += 1;
            return None;
        }
        window.logged += 1;
        let (error, message) = error_of(r.body);
        let client = r.peer.map_or_else(|| "-".to_owned(), |ip| ip.to_string());
        let mut line = format!(
            "audit: event.action={action} event.outcome=failure event.duration={} http.request.method={} url.path={} http.response.status_code={} client.ip={client} error.code={} error.message={message:?}",
            r.took.as_nanos(),
            r.method,
            r.path,
            r.status,
            if error.is_empty() { "-" } else { &error },
        );
        if left_out > 0 {
            line.push_str(&format!(
                " ({left_out} more refusals of this client were not logged in the minute before)"
            ));
        }
        Some(line)
    }
}

/// The `error` and `message` members of an error answer's JSON body (empty when absent).
fn error_of(body: &[u8]) -> (String, String) {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let member = |name: &str| {
        json.get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    (member("error"), member("message"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(status: u16, body: &'static str) -> Refused<'static> {
        Refused {
            method: "POST",
            path: "/api/fleet/agents/a1/checkin",
            peer: Some("192.0.2.7".parse().unwrap()),
            status,
            body: body.as_bytes(),
            took: Duration::from_millis(3),
            management: false,
        }
    }

    #[test]
    fn refusals_are_logged_with_ecs_fields_within_a_budget_per_client() {
        let mut r = Refusals::default();
        let t0 = Instant::now();
        let unauthorized = refused(
            401,
            r#"{"statusCode":401,"error":"ErrUnauthorized","message":"ErrUnauthorized"}"#,
        );
        let line = r.line(&unauthorized, t0).unwrap();
        assert_eq!(
            line,
            "audit: event.action=agent-auth-refused event.outcome=failure event.duration=3000000 http.request.method=POST url.path=/api/fleet/agents/a1/checkin http.response.status_code=401 client.ip=192.0.2.7 error.code=ErrUnauthorized error.message=\"ErrUnauthorized\""
        );
        let version = refused(
            400,
            r#"{"statusCode":400,"error":"UnsupportedVersion","message":"version is not supported"}"#,
        );
        assert!(r
            .line(&version, t0)
            .unwrap()
            .contains("event.action=agent-version-refused"));
        assert_eq!(r.line(&refused(400, r#"{"error":"BadRequest"}"#), t0), None);
        assert_eq!(r.line(&refused(404, "{}"), t0), None);
        for _ in 2..PER_WINDOW {
            assert!(r.line(&unauthorized, t0).is_some());
        }
        assert_eq!(r.line(&unauthorized, t0), None, "over the budget");
        assert_eq!(r.line(&unauthorized, t0 + WINDOW / 2), None);
        let other = Refused {
            peer: Some("192.0.2.8".parse().unwrap()),
            ..refused(401, "{}")
        };
        assert!(r.line(&other, t0).is_some(), "another client has its own");
        let next = r.line(&unauthorized, t0 + WINDOW).unwrap();
        assert!(
            next.ends_with("(2 more refusals of this client were not logged in the minute before)"),
            "{next}"
        );
    }
}
