//! The console's session: a stateless cookie signed with the admin token, and the CSRF token
//! derived from it.
//!
//! The cookie value is `v1.<expiry, unix seconds>.<role>.<name>.<nonce>.<mac>`, the mac an
//! HMAC-SHA256 over the rest keyed by the admin token: the server keeps no session table (the
//! event loop's routing step stays pure), a forged or altered cookie fails the mac, an old one
//! fails its expiry, rotating the admin token ends every session at once, and an operator's
//! session ends when the operator leaves `operator-tokens` or changes role (checked by the caller
//! against the credentials in force). The CSRF token is an HMAC
//! of the cookie value under the same key, so only a page that read it from the login answer
//! (same origin) can send it back in `X-CSRF-Token`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::hmac;

use crate::mgmt::token::Role;

/// The cookie's name.
pub const COOKIE: &str = "fleet_edge_session";

/// How long a session lasts (8 hours: a working day, then log in again).
pub const LIFETIME_SECS: u64 = 8 * 3600;

/// A verified session cookie.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The cookie's value as presented.
    pub value: String,
    /// When it expires (unix seconds).
    pub expires: u64,
    /// Who logged in: `admin` or an operator's name.
    pub name: String,
    /// The role it was issued with.
    pub role: Role,
}

fn key(admin_token: &str) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, admin_token.as_bytes())
}

fn mac(admin_token: &str, purpose: &str, text: &str) -> String {
    let tag = hmac::sign(&key(admin_token), format!("{purpose}|{text}").as_bytes());
    URL_SAFE_NO_PAD.encode(tag.as_ref())
}

/// A new session cookie value expiring `LIFETIME_SECS` after `now`; `nonce` is random bytes
/// from the caller (so two logins in one second get different sessions).
pub fn issue(admin_token: &str, name: &str, role: Role, now: u64, nonce: &[u8]) -> Session {
    let expires = now.saturating_add(LIFETIME_SECS);
    let body = format!(
        "v1.{expires}.{}.{name}.{}",
        role.as_str(),
        URL_SAFE_NO_PAD.encode(nonce)
    );
    let value = format!("{body}.{}", mac(admin_token, "session", &body));
    Session {
        value,
        expires,
        name: name.to_owned(),
        role,
    }
}

/// The session in `cookie_header` (a request's `Cookie` header), if it is signed by
/// `admin_token` and not expired at `now`.
pub fn verify(cookie_header: &str, admin_token: &str, now: u64) -> Option<Session> {
    let value = cookie_header.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == COOKIE).then_some(value)
    })?;
    let (body, presented) = value.rsplit_once('.')?;
    let mut parts = body.split('.');
    if parts.next() != Some("v1") {
        return None;
    }
    let expires: u64 = parts.next()?.parse().ok()?;
    let role = Role::parse(parts.next()?)?;
    let name = parts.next()?.to_owned();
    let tag = URL_SAFE_NO_PAD.decode(presented).ok()?;
    let signed = format!("session|{body}");
    hmac::verify(&key(admin_token), signed.as_bytes(), &tag).ok()?;
    (now < expires).then(|| Session {
        value: value.to_owned(),
        expires,
        name,
        role,
    })
}

/// The CSRF token bound to `session`.
pub fn csrf_token(admin_token: &str, session: &Session) -> String {
    mac(admin_token, "csrf", &session.value)
}

/// Whether `presented` is the CSRF token of `session` (compared in constant time).
pub fn csrf_ok(admin_token: &str, session: &Session, presented: &str) -> bool {
    super::super::token::equal(presented, &csrf_token(admin_token, session))
}

/// The `Set-Cookie` value that stores `session`: HttpOnly, SameSite=Strict, Secure (browsers
/// accept Secure cookies from `http://localhost` and `127.0.0.1`, where the management listener
/// speaks plain HTTP; everywhere else it speaks TLS only), with the session's lifetime.
pub fn set_cookie(session: &Session) -> String {
    format!(
        "{COOKIE}={}; Path=/; Max-Age={LIFETIME_SECS}; HttpOnly; Secure; SameSite=Strict",
        session.value
    )
}

/// The `Set-Cookie` value that removes the session cookie (logout).
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef-admin";

    fn header(s: &Session) -> String {
        format!("other=1; {COOKIE}={}", s.value)
    }

    #[test]
    fn an_issued_session_verifies_until_it_expires() {
        let s = issue(TOKEN, "admin", Role::Admin, 1_000, b"nonce");
        assert_eq!(verify(&header(&s), TOKEN, 1_000), Some(s.clone()));
        assert_eq!(
            verify(&header(&s), TOKEN, 1_000 + LIFETIME_SECS - 1),
            Some(s.clone())
        );
        assert_eq!(verify(&header(&s), TOKEN, 1_000 + LIFETIME_SECS), None);
    }

    #[test]
    fn forged_altered_or_foreign_cookies_are_refused() {
        let s = issue(TOKEN, "admin", Role::Admin, 1_000, b"nonce");
        assert_eq!(
            verify(&header(&s), "another-admin-token-value", 1_000),
            None
        );
        let longer = s
            .value
            .replacen(&format!("v1.{}", s.expires), "v1.99999999999", 1);
        assert_eq!(verify(&format!("{COOKIE}={longer}"), TOKEN, 1_000), None);
        assert_eq!(
            verify(&format!("{COOKIE}=v1.99999999999.x.y"), TOKEN, 1_000),
            None
        );
        // A viewer cannot make itself an admin.
        let v = issue(TOKEN, "alice", Role::Viewer, 1_000, b"nonce");
        assert_eq!(
            verify(&header(&v), TOKEN, 1_000).unwrap().role,
            Role::Viewer
        );
        let raised = v.value.replacen(".viewer.", ".admin.", 1);
        assert_eq!(verify(&format!("{COOKIE}={raised}"), TOKEN, 1_000), None);
        assert_eq!(verify("", TOKEN, 1_000), None);
        assert_eq!(
            verify(&format!("x{COOKIE}={}", s.value), TOKEN, 1_000),
            None
        );
    }

    #[test]
    fn the_csrf_token_belongs_to_its_session() {
        let a = issue(TOKEN, "admin", Role::Admin, 1_000, b"a");
        let b = issue(TOKEN, "admin", Role::Admin, 1_000, b"b");
        assert_ne!(a.value, b.value);
        assert!(csrf_ok(TOKEN, &a, &csrf_token(TOKEN, &a)));
        assert!(!csrf_ok(TOKEN, &a, &csrf_token(TOKEN, &b)));
        assert!(!csrf_ok(TOKEN, &a, ""));
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure() {
        let c = set_cookie(&issue(TOKEN, "alice", Role::Viewer, 0, b"n"));
        for attr in [
            "HttpOnly",
            "Secure",
            "SameSite=Strict",
            "Max-Age=28800",
            "Path=/",
        ] {
            assert!(c.contains(attr), "{c}");
        }
        assert!(clear_cookie().contains("Max-Age=0"));
    }
}
