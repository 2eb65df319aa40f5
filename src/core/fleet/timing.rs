//! How long the engine takes to answer each request, by route: the figures of the monitoring
//! endpoint ([`RouteStats`]). A request is timed from [`Timing::begin`] (it reached the engine)
//! to its answer leaving the engine ([`Timing::answered`]); the engine reads no clock, so the
//! end is the `now` of the handler that answers ([`Timing::tick`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::io::{ConnKey, Origin};
use crate::api::{self, Route};
use crate::http::Request;
use crate::mgmt::route_stats::{index, RouteStats};

/// Requests being timed, and the figures they end in.
#[derive(Debug)]
pub(super) struct Timing {
    stats: Arc<RouteStats>,
    open: HashMap<ConnKey, (usize, Instant)>,
    now: Instant,
}

impl Timing {
    pub(super) fn new(now: Instant) -> Self {
        Self {
            stats: Arc::default(),
            open: HashMap::new(),
            now,
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
        if let Some((earlier, _)) = self.open.insert(conn, (route, now)) {
            // Not answered by the engine (a connection has one request in it at a time).
            self.stats.dropped(earlier);
        }
    }

    /// `conn`'s request was answered with `status`.
    pub(super) fn answered(&mut self, conn: ConnKey, status: u16) {
        if let Some((route, began)) = self.open.remove(&conn) {
            let took = self.now.saturating_duration_since(began);
            self.stats.answered(route, status, took);
        }
    }

    /// `conn` closed; a request of it still open is dropped.
    pub(super) fn closed(&mut self, conn: ConnKey) {
        if let Some((route, _)) = self.open.remove(&conn) {
            self.stats.dropped(route);
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
