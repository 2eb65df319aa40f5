//! Fuzz target `mgmt_request`: an arbitrary method, path, bearer token and body through the
//! management API's authentication, routing and body decoding (`mgmt::handle`, `mgmt::route`),
//! then, when they pass, executed (`mgmt::ops::execute`) against the embedded mode's real admin
//! (`embedded::EmbeddedAdmin`: a redb store and a policies directory under the system temporary
//! directory, recreated every 2,000 executions so state stays small). A `PUT` of a policy goes
//! through the embedded policy loader (`embedded::policies::apply`: the file is written, read
//! back, decoded and validated as a policy file). `POST /api/fleet/fleet_edge/snapshot` is not
//! executed (each would write a copy of the database), nor the health route (the event loop
//! answers it). Console paths (`/`, `/console/...`) are the console's pages and login. No input may panic; a refusal is a 4xx
//! response, and only the right token gets past authentication.
//!
//! Input layout: byte 0 picks the method; then lines: the path, the presented token, and the
//! rest is the body.
#![no_main]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use fleet_edge::backend::local::LocalStore;
use fleet_edge::embedded::EmbeddedAdmin;
use fleet_edge::http::{Method, Request};
use fleet_edge::mgmt::console::LoginGuard;
use fleet_edge::mgmt::ops::execute;
use fleet_edge::mgmt::token::Credentials;
use fleet_edge::mgmt::{handle, route, Route};
use libfuzzer_sys::fuzz_target;

/// The admin in use and how many requests it has served.
static ADMIN: Mutex<Option<(EmbeddedAdmin, u32)>> = Mutex::new(None);

fn fresh_admin() -> EmbeddedAdmin {
    let dir = std::env::temp_dir().join(format!("fleet-edge-fuzz-mgmt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let policies_dir: PathBuf = dir.join("policies");
    std::fs::create_dir_all(&policies_dir).expect("policies directory");
    let store = LocalStore::open(&dir).expect("a fresh store opens");
    EmbeddedAdmin::new(
        Arc::new(store),
        policies_dir,
        Default::default(),
        fleet_edge::model::agent_status::OFFLINE_AFTER,
    )
}

const TOKEN: &str = "admin-token-0123456789";

fuzz_target!(|data: &[u8]| {
    let [m, rest @ ..] = data else {
        return;
    };
    let method = match m % 6 {
        0 => Method::Get,
        1 => Method::Post,
        2 => Method::Put,
        3 => Method::Delete,
        4 => Method::Head,
        _ => Method::Patch,
    };
    let mut parts = rest.splitn(3, |b| *b == b'\n');
    let path = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let token = parts.next().unwrap_or_default().to_vec();
    let body = parts.next().unwrap_or_default().to_vec();
    let _ = route(&method, &path);
    let mut authorization = b"Bearer ".to_vec();
    authorization.extend_from_slice(&token);
    let request = Request {
        peer: None,
        method,
        path,
        query: None,
        minor_version: 1,
        headers: vec![
            ("authorization".into(), authorization),
            ("kbn-xsrf".into(), b"fuzz".to_vec()),
        ],
        body,
        keep_alive: true,
        tls: false,
    };
    let console = request.path == "/" || request.path.starts_with("/console");
    let mut guard = LoginGuard::default();
    let answer = handle(
        &request,
        &Credentials::admin(TOKEN),
        &mut guard,
        Instant::now(),
        1_800_000_000,
    );
    let admin_request = match answer {
        Ok(admin_request) => {
            assert_eq!(std::str::from_utf8(&token).map(str::trim), Ok(TOKEN));
            admin_request
        }
        // The console's pages and assets are public (2xx, 3xx); its login and the API refuse
        // with a 4xx.
        Err(response) if console => {
            assert!((200..500).contains(&response.status));
            return;
        }
        Err(response) => {
            assert!((400..500).contains(&response.status));
            return;
        }
    };
    if matches!(admin_request.route, Route::Snapshot | Route::ServerHealth) {
        return;
    }
    let mut slot = ADMIN.lock().unwrap_or_else(|e| e.into_inner());
    if slot.as_ref().is_none_or(|(_, served)| *served >= 2_000) {
        // The old store must be dropped (its lock released) before the directory is reused.
        *slot = None;
        *slot = Some((fresh_admin(), 0));
    }
    if let Some((admin, served)) = slot.as_mut() {
        *served += 1;
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let (status, body) = execute(admin, &admin_request, now);
        assert!(
            matches!(status, 200..=299 | 400..=499),
            "status {status}: {body}"
        );
    }
});
