//! The console's routing, headers and session rules, and the management API's acceptance of
//! the session cookie (writes only with the session's CSRF token).

use super::*;
use crate::mgmt::token::Operator;
use crate::mgmt::Route;

const TOKEN: &str = "0123456789abcdef-admin";
const VIEWER: &str = "0123456789abcdef-viewer";

fn creds(admin: &str) -> Credentials {
    Credentials {
        admin: admin.into(),
        operators: vec![Operator {
            name: "alice".into(),
            role: Role::Viewer,
            token: VIEWER.into(),
        }],
    }
}

fn handle(req: &Request, admin: &str) -> Result<crate::mgmt::AdminRequest, Response> {
    crate::mgmt::handle(
        req,
        &creds(admin),
        &mut LoginGuard::default(),
        Instant::now(),
        now(),
    )
}

fn serve(req: &Request, admin: &str, wall: u64) -> Option<Response> {
    super::serve(
        req,
        &creds(admin),
        &mut LoginGuard::default(),
        Instant::now(),
        wall,
    )
}

fn req(method: Method, path: &str, headers: &[(&str, &str)], body: &str) -> Request {
    Request {
        peer: None,
        method,
        path: path.into(),
        query: None,
        minor_version: 1,
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect(),
        body: body.as_bytes().to_vec(),
        keep_alive: true,
        tls: false,
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Logs in; the `Cookie` header a browser would send back and the CSRF token.
fn login_ok() -> (String, String) {
    login_as(TOKEN)
}

fn login_as(token: &str) -> (String, String) {
    let r = handle(
        &req(
            Method::Post,
            LOGIN,
            &[("kbn-xsrf", "1")],
            &format!(r#"{{"token":"{token}"}}"#),
        ),
        TOKEN,
    )
    .unwrap_err();
    assert_eq!(r.status, 200);
    let set = r.header("set-cookie").unwrap().to_owned();
    let cookie = set.split(';').next().unwrap().to_owned();
    let body: Value = serde_json::from_slice(r.body_bytes()).unwrap();
    (cookie, body["csrf"].as_str().unwrap().to_owned())
}

#[test]
fn assets_are_served_with_type_csp_and_etag() {
    for (path, kind, source) in [
        (
            "/console/",
            "text/html",
            &include_bytes!("assets/index.html")[..],
        ),
        (
            "/console/app.js",
            "text/javascript",
            include_bytes!("assets/app.js"),
        ),
        (
            "/console/app.css",
            "text/css",
            include_bytes!("assets/app.css"),
        ),
        (
            "/console/favicon.svg",
            "image/svg+xml",
            include_bytes!("assets/favicon.svg"),
        ),
    ] {
        // Without gzip: the file as written.
        let r = serve(&req(Method::Get, path, &[], ""), TOKEN, now()).unwrap();
        assert_eq!(r.status, 200, "{path}");
        assert!(
            r.header("content-type").unwrap().starts_with(kind),
            "{path}"
        );
        assert_eq!(r.header("content-security-policy"), Some(CSP));
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(r.header("content-encoding"), None);
        assert_eq!(r.body_bytes(), source, "{path}");
        // With gzip: the embedded bytes, which gunzip to the file.
        let gz = serve(
            &req(Method::Get, path, &[("accept-encoding", "gzip, br")], ""),
            TOKEN,
            now(),
        )
        .unwrap();
        assert_eq!(gz.header("content-encoding"), Some("gzip"));
        assert_eq!(
            crate::http::gzip::decompress(gz.body_bytes(), 0).unwrap(),
            source
        );
        let tag = gz.header("etag").unwrap().to_owned();
        assert_ne!(Some(tag.as_str()), r.header("etag"));
        let again = serve(
            &req(
                Method::Get,
                path,
                &[("if-none-match", &tag), ("accept-encoding", "gzip")],
                "",
            ),
            TOKEN,
            now(),
        )
        .unwrap();
        assert_eq!(again.status, 304);
        assert!(again.body_bytes().is_empty());
    }
    assert!(!CSP.contains("unsafe"), "{CSP}");
    let html = include_str!("assets/index.html");
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "inline code in the page"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "another host in the page"
    );
    let root = serve(&req(Method::Get, "/", &[], ""), TOKEN, now()).unwrap();
    assert_eq!(
        (root.status, root.header("location")),
        (302, Some("/console/"))
    );
    assert_eq!(
        serve(&req(Method::Get, "/console/x.js", &[], ""), TOKEN, now())
            .unwrap()
            .status,
        404
    );
    assert!(serve(
        &req(Method::Get, "/api/fleet/agents", &[], ""),
        TOKEN,
        now()
    )
    .is_none());
}

#[test]
fn login_needs_the_admin_token_and_the_xsrf_header() {
    let wrong = handle(
        &req(
            Method::Post,
            LOGIN,
            &[("kbn-xsrf", "1")],
            r#"{"token":"not-the-token"}"#,
        ),
        TOKEN,
    )
    .unwrap_err();
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("set-cookie").is_none());
    let no_xsrf = handle(
        &req(
            Method::Post,
            LOGIN,
            &[],
            &format!(r#"{{"token":"{TOKEN}"}}"#),
        ),
        TOKEN,
    )
    .unwrap_err();
    assert_eq!(no_xsrf.status, 400);
    assert!(no_xsrf.header("set-cookie").is_none());
    // No session can be had, nor forged, when the API has no token.
    let empty = handle(
        &req(Method::Post, LOGIN, &[("kbn-xsrf", "1")], r#"{"token":""}"#),
        "",
    )
    .unwrap_err();
    assert_eq!(empty.status, 401);
}

#[test]
fn the_session_cookie_reads_the_api_and_writes_only_with_its_csrf_token() {
    let (cookie, csrf) = login_ok();
    let read = handle(
        &req(Method::Get, "/api/fleet/agents", &[("cookie", &cookie)], ""),
        TOKEN,
    )
    .unwrap();
    assert_eq!(read.route, Route::ListAgents);
    let write = |headers: &[(&str, &str)]| {
        handle(
            &req(
                Method::Put,
                "/api/fleet/agents/a1",
                headers,
                r#"{"tags":["x"]}"#,
            ),
            TOKEN,
        )
    };
    // kbn-xsrf alone is not enough for a cookie: the CSRF token is.
    let refused = write(&[("cookie", &cookie), ("kbn-xsrf", "1")]).unwrap_err();
    assert_eq!(refused.status, 403);
    let wrong = write(&[("cookie", &cookie), ("x-csrf-token", "forged")]).unwrap_err();
    assert_eq!(wrong.status, 403);
    let ok = write(&[("cookie", &cookie), ("x-csrf-token", &csrf)]).unwrap();
    assert_eq!(ok.route, Route::UpdateAgent("a1".into()));
    // The session answers its CSRF token again (a page reload) and logout clears the cookie.
    let s = handle(
        &req(Method::Get, SESSION, &[("cookie", &cookie)], ""),
        TOKEN,
    )
    .unwrap_err();
    assert_eq!(s.status, 200);
    let out = handle(
        &req(
            Method::Post,
            LOGOUT,
            &[("cookie", &cookie), ("x-csrf-token", &csrf)],
            "",
        ),
        TOKEN,
    )
    .unwrap_err();
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    // A token rotation ends the session.
    let other = "fedcba9876543210-rotated";
    assert_eq!(
        handle(
            &req(Method::Get, "/api/fleet/agents", &[("cookie", &cookie)], ""),
            other
        )
        .unwrap_err()
        .status,
        401
    );
}

#[test]
fn logout_needs_the_csrf_token_of_a_live_session() {
    let (cookie, _) = login_ok();
    let refused = handle(
        &req(Method::Post, LOGOUT, &[("cookie", &cookie)], ""),
        TOKEN,
    )
    .unwrap_err();
    assert_eq!(refused.status, 403);
    assert!(refused.header("set-cookie").is_none());
}

#[test]
fn a_viewer_reads_and_cannot_write() {
    let (cookie, csrf) = login_as(VIEWER);
    let s = handle(
        &req(Method::Get, SESSION, &[("cookie", &cookie)], ""),
        TOKEN,
    )
    .unwrap_err();
    let body: Value = serde_json::from_slice(s.body_bytes()).unwrap();
    assert_eq!(
        (body["name"].as_str(), body["role"].as_str()),
        (Some("alice"), Some("viewer"))
    );
    let read = handle(
        &req(Method::Get, "/api/fleet/agents", &[("cookie", &cookie)], ""),
        TOKEN,
    )
    .unwrap();
    assert_eq!(read.route, Route::ListAgents);
    let write = handle(
        &req(
            Method::Post,
            "/api/fleet/agents/a1/unenroll",
            &[("cookie", &cookie), ("x-csrf-token", &csrf)],
            "{}",
        ),
        TOKEN,
    )
    .unwrap_err();
    assert_eq!(write.status, 403);
    // The same with the viewer's token as a bearer (a script).
    let bearer = format!("Bearer {VIEWER}");
    let write = handle(
        &req(
            Method::Post,
            "/api/fleet/agents/a1/unenroll",
            &[("authorization", &bearer), ("kbn-xsrf", "1")],
            "{}",
        ),
        TOKEN,
    )
    .unwrap_err();
    assert_eq!(write.status, 403);
    // Removed from the file (a reload): the session ends.
    let gone = crate::mgmt::handle(
        &req(Method::Get, "/api/fleet/agents", &[("cookie", &cookie)], ""),
        &Credentials::admin(TOKEN),
        &mut LoginGuard::default(),
        Instant::now(),
        now(),
    )
    .unwrap_err();
    assert_eq!(gone.status, 401);
    // A viewer logs out.
    let out = handle(
        &req(
            Method::Post,
            LOGOUT,
            &[("cookie", &cookie), ("x-csrf-token", &csrf)],
            "",
        ),
        TOKEN,
    )
    .unwrap_err();
    assert_eq!(out.status, 200);
}

#[test]
fn wrong_tokens_are_rate_limited() {
    let creds = creds(TOKEN);
    let mut guard = LoginGuard::default();
    let start = Instant::now();
    let attempt = |guard: &mut LoginGuard, token: &str, at: Instant| {
        crate::mgmt::handle(
            &req(
                Method::Post,
                LOGIN,
                &[("kbn-xsrf", "1")],
                &format!(r#"{{"token":"{token}"}}"#),
            ),
            &creds,
            guard,
            at,
            now(),
        )
        .unwrap_err()
    };
    for _ in 0..BURST {
        assert_eq!(attempt(&mut guard, "wrong-token-000000", start).status, 401);
    }
    // Used up: even the right token waits, and is told how long.
    let locked = attempt(&mut guard, TOKEN, start);
    assert_eq!(locked.status, 429);
    assert_eq!(locked.header("retry-after"), Some("12"));
    assert!(locked.header("set-cookie").is_none());
    // One refill later one attempt is allowed again.
    assert_eq!(attempt(&mut guard, TOKEN, start + REFILL).status, 200);
    assert_eq!(
        attempt(&mut guard, "wrong-token-000000", start + REFILL).status,
        401
    );
    assert_eq!(attempt(&mut guard, TOKEN, start + REFILL).status, 429);
}
