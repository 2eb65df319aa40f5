//! The request pipeline of fleet-protocol.md §1.2, as a pure function from a decoded request and
//! the server's state to a response: request id (echoed or generated), routing (unknown path →
//! 404 text, wrong method → 405), `Elastic-Api-Version` (§1.6), then the endpoint handler.
//!
//! One file per endpoint lives beside this one; the spec's error table is `errors.rs`.

pub mod auth;
pub mod errors;
pub mod status;
pub mod user_agent;
pub mod version;

use crate::core::{Health, RequestIds};
use crate::http::{BodyLimits, Method, Request, Response};

pub use errors::ApiError;

/// What the pipeline needs to know about the server to answer a request.
#[derive(Debug)]
pub struct Context<'a> {
    /// The self-monitor state reported by `/api/status`.
    pub health: Health,
    /// Source of ids for requests without `X-Request-Id`.
    pub request_ids: &'a mut RequestIds,
}

/// The endpoints this server routes, classified from method and path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /api/status`.
    Status,
    /// A path that exists, but not for this method; carries the allowed method.
    WrongMethod(&'static str),
    /// No such path.
    NotFound,
}

/// Classifies a request the way the Go server's router does: exact paths, no trailing-slash
/// folding.
pub fn route(method: &Method, path: &str) -> Route {
    match path {
        "/api/status" if *method == Method::Get => Route::Status,
        "/api/status" => Route::WrongMethod("GET"),
        _ => Route::NotFound,
    }
}

/// Body limits per route (fleet-protocol.md §10.2). Unrouted paths get a small cap so an unknown
/// URL cannot be used to make the server buffer a large body.
pub fn body_limits(method: &Method, path: &str) -> BodyLimits {
    match route(method, path) {
        Route::Status | Route::WrongMethod(_) | Route::NotFound => BodyLimits {
            max_body: 64 * 1024,
            max_decompressed: 64 * 1024,
        },
    }
}

/// Runs the whole pipeline for one request.
pub fn handle(req: &Request, ctx: &mut Context<'_>) -> Response {
    let request_id = request_id(req, ctx.request_ids);
    let response = dispatch(req, ctx);
    response.with_header("X-Request-Id", request_id)
}

/// The answer of the connection gate when the server is over `max_connections`
/// (fleet-protocol.md §1.1: the throttle's plain-text 429), with the `Retry-After` this server
/// adds so that clients back off instead of hammering.
pub fn capacity_exceeded(req: Option<&Request>, request_ids: &mut RequestIds) -> Response {
    let id = match req {
        Some(req) => request_id(req, request_ids),
        None => request_ids.next_id(),
    };
    Response::text(429, "Server capacity exceeded.")
        .with_header("Retry-After", "5")
        .with_header("X-Request-Id", id)
}

fn request_id(req: &Request, ids: &mut RequestIds) -> String {
    match req.header_str("x-request-id") {
        Some(id) if !id.trim().is_empty() => id.trim().to_owned(),
        _ => ids.next_id(),
    }
}

fn dispatch(req: &Request, ctx: &mut Context<'_>) -> Response {
    let route = route(&req.method, &req.path);
    match route {
        Route::NotFound => return Response::text(404, "404 page not found"),
        Route::WrongMethod(allowed) => return Response::new(405).with_header("Allow", allowed),
        Route::Status => {}
    }
    let api_version = match version::negotiate(req) {
        Ok(v) => v,
        Err(rejection) => return rejection,
    };
    let response = match route {
        Route::Status => status::handle(ctx.health),
        Route::WrongMethod(_) | Route::NotFound => Response::text(404, "404 page not found"),
    };
    response.with_header("Elastic-Api-Version", api_version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, headers: &[(&str, &str)]) -> Request {
        Request {
            method: Method::Get,
            path: path.to_owned(),
            query: None,
            minor_version: 1,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.as_bytes().to_vec()))
                .collect(),
            body: Vec::new(),
            keep_alive: true,
        }
    }

    fn run(req: &Request, health: Health) -> Response {
        let mut ids = RequestIds::new(1);
        handle(
            req,
            &mut Context {
                health,
                request_ids: &mut ids,
            },
        )
    }

    #[test]
    fn request_id_is_echoed_or_generated() {
        let r = run(
            &get("/api/status", &[("X-Request-Id", "abc-1")]),
            Health::Healthy,
        );
        assert_eq!(r.header("x-request-id"), Some("abc-1"));
        let r = run(&get("/api/status", &[]), Health::Healthy);
        assert_eq!(r.header("x-request-id").map(str::len), Some(36));
    }

    #[test]
    fn unknown_path_is_the_routers_404_text_without_api_version() {
        let r = run(&get("/api/status/", &[]), Health::Healthy);
        assert_eq!(r.status, 404);
        assert_eq!(r.body_bytes(), b"404 page not found");
        assert!(r.header("elastic-api-version").is_none());
        assert!(r.header("x-request-id").is_some());
    }

    #[test]
    fn wrong_method_is_405() {
        let mut req = get("/api/status", &[]);
        req.method = Method::Post;
        assert_eq!(run(&req, Health::Healthy).status, 405);
    }

    #[test]
    fn status_carries_default_api_version() {
        let r = run(&get("/api/status", &[]), Health::Healthy);
        assert_eq!(r.header("elastic-api-version"), Some("2023-06-01"));
    }

    #[test]
    fn capacity_429_has_retry_after_and_request_id() {
        let mut ids = RequestIds::new(3);
        let r = capacity_exceeded(None, &mut ids);
        assert_eq!(r.status, 429);
        assert_eq!(r.header("retry-after"), Some("5"));
        assert_eq!(r.body_bytes(), b"Server capacity exceeded.");
        assert!(r.header("x-request-id").is_some());
    }
}
