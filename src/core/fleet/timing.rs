//! How long the engine takes to answer each request, by route: the figures of the monitoring
//! endpoint ([`RouteStats`]). A request is timed from [`Timing::begin`] (it reached the engine)
//! to its answer leaving the engine ([`Timing::answered`]); the engine reads no clock, so the
//! end is the `now` of the handler that answers ([`Timing::tick`]). Refused requests (401,
//! version refusals) get their audit line here too (`refusals.rs`), with that duration.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::io::{ConnKey, Origin};
use super::refusals::{Refusals, Refused};
use crate::api::{self, Route};
use crate::http::Request;
use crate::mgmt::route_stats::{index, RouteStats};

/// Requests being timed, and the figures they end in.
#[derive(Debug)]
pub(super) struct Timing {
    stats: Arc<RouteStats>,
    open: HashMap<ConnKey, Open>,
    now: Instant,
    refusals: Refusals,
}

/// A request not answered yet: what its figures and a refusal's audit line need. Kept small:
/// a parked checkin holds one for its whole long poll (issue 21), in its in-flight record
/// rather than in [`Timing`]'s table ([`Timing::park`], [`Timing::resume`]).
#[derive(Debug)]
pub(super) struct Open {
    began: Instant,
    /// `METHOD path`, for a refusal's audit line; dropped once a checkin parks (it is past
    /// authentication, so it cannot be refused any more).
    request: Box<str>,
    peer: Option<std::net::IpAddr>,
    route: u8,
}

impl Timing {
    pub(super) fn new(now: Instant) -> Self {
        Self {
            stats: Arc::default(),
            open: HashMap::new(),
            now,
            refusals: Refusals::default(),
        }
    }

    /// The figures, shared with the monitoring endpoint.
    pub(super) fn stats(&self) -> Arc<RouteStats> {
        Arc::clone(&self.stats)
    }

    /// The engine was told something at `now`.
    pub(super) fn tick(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    /// `req` from `origin` reached the engine on `conn`.
    pub(super) fn begin(&mut self, conn: ConnKey, origin: Origin, req: &Request, now: Instant) {
        self.tick(now);
        let route = index(route_name(origin, req));
        self.stats.started(route);
        let method = req.method.as_str();
        let mut request = String::with_capacity(method.len() + 1 + req.path.len());
        request.push_str(method);
        request.push(' ');
        request.push_str(&req.path);
        let open = Open {
            began: now,
            request: request.into_boxed_str(),
            peer: req.peer,
            // `ROUTES` has 15 names.
            route: u8::try_from(route).unwrap_or(u8::MAX),
        };
        if let Some(earlier) = self.open.insert(conn, open) {
            // Not answered by the engine (a connection has one request in it at a time).
            self.stats.dropped(usize::from(earlier.route));
        }
    }

    /// `conn`'s checkin parked: its record leaves the table for the parked checkin's in-flight
    /// record, without its request line (not needed any more, see [`Open`]).
    pub(super) fn park(&mut self, conn: ConnKey) -> Option<Open> {
        let mut open = self.open.remove(&conn)?;
        open.request = Box::default();
        Some(open)
    }

    /// `conn`'s parked checkin is being answered or dropped: its record comes back (from
    /// [`Self::park`]) to be ended by [`Self::answered`] or [`Self::closed`].
    pub(super) fn resume(&mut self, conn: ConnKey, open: Open) {
        if let Some(earlier) = self.open.insert(conn, open) {
            // Not possible (a connection has one request in the engine at a time); counted as
            // `begin` counts a request it replaces.
            self.stats.dropped(usize::from(earlier.route));
        }
    }

    /// `conn`'s request was answered with `status` and `body`.
    pub(super) fn answered(&mut self, conn: ConnKey, status: u16, body: &[u8]) {
        let Some(open) = self.open.remove(&conn) else {
            return;
        };
        let took = self.now.saturating_duration_since(open.began);
        let route = usize::from(open.route);
        self.stats.answered(route, status, took);
        if matches!(status, 400 | 401) {
            let (method, path) = open.request.split_once(' ').unwrap_or(("", ""));
            let refused = Refused {
                method,
                path,
                peer: open.peer,
                status,
                body,
                took,
                management: route == index("management"),
            };
            if let Some(line) = self.refusals.line(&refused, self.now) {
                log::info!("{line}");
            }
        }
    }

    /// `conn` closed; a request of it still open is dropped.
    pub(super) fn closed(&mut self, conn: ConnKey) {
        if let Some(open) = self.open.remove(&conn) {
            self.stats.dropped(usize::from(open.route));
        }
    }
}

/// The route name of a request ([`crate::mgmt::route_stats::ROUTES`]).
fn route_name(origin: Origin, req: &Request) -> &'static str {
    if origin == Origin::Management {
        return "management";
    }
    match api::route(&req.method, &req.path) {
        Route::Checkin(_) => "checkin",
        Route::Enroll => "enroll",
        Route::Artifact(..) => "artifacts",
        Route::Acks(_) => "acks",
        Route::Status => "status",
        Route::UploadBegin => "upload",
        Route::UploadChunk(..) => "uploadChunk",
        Route::UploadComplete(_) => "uploadEnd",
        Route::AuditUnenroll(_) => "audit_unenroll",
        Route::OpAmp => "opamp",
        Route::FileDelivery(_) => "file",
        Route::PgpKey(_) => "pgp",
        Route::Download(_) => "downloads",
        Route::WrongMethod(_) | Route::NotFound => "other",
    }
}
