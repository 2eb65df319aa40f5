//! The built-in web console on the management listener: a few static assets embedded in the
//! binary (`assets/`), the login that turns the admin token into a session cookie, and the
//! session check the management API accepts besides the bearer token. The console's pages call
//! the management API's own endpoints (`/api/fleet/...`); nothing here reads the store.
//!
//! Every console answer carries a strict Content-Security-Policy (same-origin scripts, styles
//! and requests only; no inline script; no framing), `X-Frame-Options: DENY` and `nosniff`.
//! Assets are revalidated by ETag (a hash of their bytes) so an upgraded binary never serves a
//! stale page; the encoder gzips them for clients that accept it.

pub mod session;

use std::time::{Duration, Instant};

use ring::rand::SecureRandom;
use serde_json::{json, Value};

use crate::http::{Body, Method, Request, Response};
use crate::mgmt::token::{Credentials, Role};

pub use session::Session;

/// The policy every console answer carries.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
base-uri 'none'";

/// One embedded file, gzipped by `build.rs`.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    gz: &'static [u8],
}

macro_rules! gz {
    ($name:literal) => {
        include_bytes!(concat!(env!("OUT_DIR"), "/console/", $name, ".gz"))
    };
}

const ASSETS: &[Asset] = &[
    Asset {
        path: "/console/",
        content_type: "text/html; charset=utf-8",
        gz: gz!("index.html"),
    },
    Asset {
        path: "/console/app.js",
        content_type: "text/javascript; charset=utf-8",
        gz: gz!("app.js"),
    },
    Asset {
        path: "/console/app.css",
        content_type: "text/css; charset=utf-8",
        gz: gz!("app.css"),
    },
    Asset {
        path: "/console/favicon.svg",
        content_type: "image/svg+xml",
        gz: gz!("favicon.svg"),
    },
];

/// The largest asset once gunzipped (a bound for clients without gzip).
const MAX_ASSET: usize = 1 << 20;

/// The console's own endpoints (everything else is the management API).
const LOGIN: &str = "/console/api/login";
const LOGOUT: &str = "/console/api/logout";
const SESSION: &str = "/console/api/session";

/// How a management request authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// `Authorization: Bearer <token>` (scripts, the CLI, Kibana clients): who and their role.
    Bearer(String, Role),
    /// The console's session cookie.
    Console(Session),
}

impl Caller {
    /// What the caller may do.
    pub fn role(&self) -> Role {
        match self {
            Caller::Bearer(_, role) => *role,
            Caller::Console(s) => s.role,
        }
    }
}

/// Wrong-token attempts at the console's login: a bucket of `BURST` attempts refilled one per
/// `REFILL`; while it is empty every login (right token or not, so guessing learns nothing) is
/// answered 429 with `Retry-After`. One bucket for the listener: the management listener is for
/// a handful of operators, and the bearer API (the CLI) is not affected.
#[derive(Debug)]
pub struct LoginGuard {
    /// Attempts left, in units of 1/1000 attempt.
    left_milli: u64,
    last: Option<Instant>,
    /// Wrong attempts since the start (for the log line).
    refused: u64,
}

/// Wrong attempts allowed in a row.
pub const BURST: u64 = 5;
/// One more attempt per this long.
pub const REFILL: Duration = Duration::from_secs(12);

impl Default for LoginGuard {
    fn default() -> Self {
        LoginGuard {
            left_milli: BURST * 1000,
            last: None,
            refused: 0,
        }
    }
}

impl LoginGuard {
    fn refill(&mut self, now: Instant) {
        if let Some(last) = self.last {
            let gained = now.saturating_duration_since(last).as_millis() as u64 * 1000
                / REFILL.as_millis() as u64;
            self.left_milli = (self.left_milli + gained).min(BURST * 1000);
        }
        self.last = Some(now);
    }

    /// `Err(seconds to wait)` while attempts are used up.
    fn admit(&mut self, now: Instant) -> Result<(), u64> {
        self.refill(now);
        if self.left_milli >= 1000 {
            return Ok(());
        }
        let missing = 1000 - self.left_milli;
        Err((missing * REFILL.as_secs()).div_ceil(1000).max(1))
    }

    fn wrong(&mut self) -> u64 {
        self.left_milli = self.left_milli.saturating_sub(1000);
        self.refused += 1;
        self.refused
    }
}

/// The console's answer to `req` when its path is the console's (`/`, `/console/...`);
/// `None` for the management API. `wall` is unix seconds.
pub fn serve(
    req: &Request,
    creds: &Credentials,
    guard: &mut LoginGuard,
    now: Instant,
    wall: u64,
) -> Option<Response> {
    let path = req.path.as_str();
    if path != "/" && path != "/console" && !path.starts_with("/console/") {
        return None;
    }
    let answer = match (&req.method, path) {
        (Method::Get | Method::Head, "/" | "/console") => {
            Response::new(302).with_header("Location", "/console/")
        }
        (Method::Post, LOGIN) => login(req, creds, guard, now, wall),
        (Method::Post, LOGOUT) => logout(req, creds, wall),
        (Method::Get, SESSION) => match caller_session(req, creds, wall) {
            Some(s) => session_answer(&creds.admin, &s),
            None => super::error(401, "Unauthorized", "no console session"),
        },
        (Method::Get | Method::Head, _) => match ASSETS.iter().find(|a| a.path == path) {
            Some(asset) => asset_response(req, asset),
            None => super::error(404, "Not Found", "no such console page"),
        },
        _ => super::error(405, "Method Not Allowed", "not a console method"),
    };
    Some(secured(answer))
}

fn session_answer(admin_token: &str, s: &Session) -> Response {
    Response::json(
        200,
        &json!({
            "csrf": session::csrf_token(admin_token, s),
            "expires": s.expires,
            "name": s.name,
            "role": s.role.as_str(),
        }),
    )
}

/// Who is calling the management API: a bearer token first, else a console session.
pub fn caller(req: &Request, creds: &Credentials, wall: u64) -> Option<Caller> {
    let bearer = req
        .header_str("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if let Some((name, role)) = bearer.and_then(|p| creds.identify(p)) {
        return Some(Caller::Bearer(name.to_owned(), role));
    }
    caller_session(req, creds, wall).map(Caller::Console)
}

/// Whether a write from `caller` carries what it must: `kbn-xsrf` (any value, as Kibana) for a
/// bearer caller, the session's CSRF token in `X-CSRF-Token` for the console; and a role that
/// may write.
pub fn write_allowed(req: &Request, caller: &Caller, admin_token: &str) -> Result<(), Response> {
    match caller {
        Caller::Bearer(..) if req.header_str("kbn-xsrf").is_none() => {
            return Err(super::error(
                400,
                "Bad Request",
                "Request must contain a kbn-xsrf header.",
            ))
        }
        Caller::Bearer(..) => {}
        Caller::Console(s) => match req.header_str("x-csrf-token") {
            Some(t) if session::csrf_ok(admin_token, s, t) => {}
            _ => {
                return Err(super::error(
                    403,
                    "Forbidden",
                    "a console write needs the session's X-CSRF-Token header",
                ))
            }
        },
    }
    if caller.role() == Role::Viewer {
        return Err(super::error(
            403,
            "Forbidden",
            "this operator has the viewer role: read only",
        ));
    }
    Ok(())
}

fn caller_session(req: &Request, creds: &Credentials, wall: u64) -> Option<Session> {
    if creds.admin.is_empty() {
        return None;
    }
    let s = session::verify(req.header_str("cookie")?, &creds.admin, wall)?;
    (creds.role_of(&s.name) == Some(s.role)).then_some(s)
}

fn login(
    req: &Request,
    creds: &Credentials,
    guard: &mut LoginGuard,
    now: Instant,
    wall: u64,
) -> Response {
    // A cross-site form can neither set this header nor send JSON without a preflight.
    if req.header_str("kbn-xsrf").is_none() {
        return super::error(
            400,
            "Bad Request",
            "Request must contain a kbn-xsrf header.",
        );
    }
    if let Err(wait) = guard.admit(now) {
        log::warn!("console login refused: too many wrong tokens, next attempt in {wait} s");
        return super::error(
            429,
            "Too Many Requests",
            &format!("too many wrong tokens: try again in {wait} s"),
        )
        .with_header("Retry-After", wait.to_string());
    }
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let presented = body.get("token").and_then(Value::as_str).unwrap_or("");
    let Some((name, role)) = creds.identify(presented.trim()) else {
        let n = guard.wrong();
        log::warn!("console login refused: wrong token (wrong attempt {n} since start)");
        return super::error(401, "Unauthorized", "wrong token");
    };
    let mut nonce = [0u8; 16];
    if ring::rand::SystemRandom::new().fill(&mut nonce).is_err() {
        return super::error(500, "Internal Server Error", "no randomness for a session");
    }
    let s = session::issue(&creds.admin, name, role, wall, &nonce);
    log::info!(
        "audit: event.action=console-login event.outcome=success user.name={name} user.roles={} (session until {})",
        role.as_str(),
        s.expires
    );
    session_answer(&creds.admin, &s).with_header("Set-Cookie", session::set_cookie(&s))
}

fn logout(req: &Request, creds: &Credentials, wall: u64) -> Response {
    let Some(s) = caller_session(req, creds, wall) else {
        return Response::json(200, &json!({})).with_header("Set-Cookie", session::clear_cookie());
    };
    // A viewer may log out: the CSRF check only, not the role's.
    match req.header_str("x-csrf-token") {
        Some(t) if session::csrf_ok(&creds.admin, &s, t) => {}
        _ => {
            return super::error(
                403,
                "Forbidden",
                "a console write needs the session's X-CSRF-Token header",
            )
        }
    }
    log::info!(
        "audit: event.action=console-logout event.outcome=success user.name={}",
        s.name
    );
    Response::json(200, &json!({})).with_header("Set-Cookie", session::clear_cookie())
}

/// FNV-1a of the asset's bytes, per representation: a strong validator that changes with the
/// binary's assets.
fn etag(bytes: &[u8], gzip: bool) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("\"{hash:016x}{}\"", if gzip { "-gz" } else { "" })
}

/// The asset as stored (gzip) for clients that accept it (every browser), gunzipped otherwise;
/// each representation with its own ETag.
fn asset_response(req: &Request, asset: &Asset) -> Response {
    let gzip = req.accepts_gzip();
    let tag = etag(asset.gz, gzip);
    let cached = req
        .header_str("if-none-match")
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let response = if cached {
        Response::new(304)
    } else if gzip {
        Response::new(200)
            .with_header("Content-Type", asset.content_type)
            .with_header("Content-Encoding", "gzip")
            .with_body(Body::Bytes(asset.gz.to_vec()))
    } else {
        match crate::http::gzip::decompress(asset.gz, MAX_ASSET) {
            Ok(plain) => Response::new(200)
                .with_header("Content-Type", asset.content_type)
                .with_body(Body::Bytes(plain)),
            Err(_) => {
                return super::error(500, "Internal Server Error", "a console asset is corrupt")
            }
        }
    };
    response
        .with_header("ETag", tag)
        .with_header("Vary", "Accept-Encoding")
        .with_header("Cache-Control", "no-cache")
}

fn secured(response: Response) -> Response {
    response
        .with_header("Content-Security-Policy", CSP)
        .with_header("X-Frame-Options", "DENY")
        .with_header("X-Content-Type-Options", "nosniff")
        .with_header("Referrer-Policy", "no-referrer")
}

#[cfg(test)]
mod tests;
