//! The request pipeline of fleet-protocol.md §1.2, as a pure function from a decoded request and
//! the server's state to a response: request id (echoed or generated), routing (unknown path →
//! 404 text, wrong method → 405), `Elastic-Api-Version` (§1.6), then the endpoint handler.
//!
//! One file per endpoint lives beside this one; the spec's error table is `errors.rs`; request
//! bodies are decoded, and their decode errors worded, as Go's decoder does in `json_body.rs`.

pub mod ack;
pub mod audit;
pub mod auth;
pub mod checkin;
pub mod delivery;
pub mod downloads;
pub mod enroll;
pub mod errors;
pub mod health;
pub mod ids;
pub mod json_body;
pub mod limits;
pub mod opamp;
pub mod pgp;
pub mod serving;
pub mod status;
pub mod uploads;
pub mod user_agent;
pub mod version;

use crate::backend::interface::DeferredBody;
use crate::backend::interface::{AckInput, CheckinInput, EnrollInput, Job, JobOutput};
use crate::backend::OpError;
use crate::http::{BodyLimits, Method, Request, Response};
use crate::server_version::ServerVersion;
use health::Health;
use ids::RequestIds;
use limits::{LimitedRoute, Refusal, RouteLimits};

pub use errors::ApiError;

/// What the pipeline needs to know about the server to answer a request.
#[derive(Debug)]
pub struct Context<'a> {
    /// The self-monitor state reported by `/api/status`.
    pub health: Health,
    /// Source of ids for requests without `X-Request-Id`.
    pub request_ids: &'a mut RequestIds,
    /// Whether a store is attached (agent endpoints need one).
    pub has_store: bool,
    /// PBKDF2 iterations for replace tokens.
    pub pbkdf2_iterations: u32,
    /// The Fleet Server version this server claims (configuration): caps agent versions and is
    /// the long status form's `version.number`.
    pub server_version: ServerVersion,
    /// Per-route rate and concurrency limits.
    pub limits: &'a mut RouteLimits,
    /// The loop's clock reading.
    pub now: std::time::Instant,
    /// The mirror and PGP key directories.
    pub files: &'a crate::api::serving::FileServing,
}

/// The endpoints this server routes, classified from method and path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route<'a> {
    /// `GET /api/status`.
    Status,
    /// `POST /api/fleet/agents/enroll`.
    Enroll,
    /// `POST /api/fleet/agents/{id}/checkin`.
    Checkin(&'a str),
    /// `POST /api/fleet/agents/{id}/acks`.
    Acks(&'a str),
    /// `POST /api/fleet/agents/{id}/audit/unenroll`.
    AuditUnenroll(&'a str),
    /// `/v1/opamp`, any method (plain-HTTP messages and WebSocket upgrades).
    OpAmp,
    /// `POST /api/fleet/uploads`.
    UploadBegin,
    /// `PUT /api/fleet/uploads/{id}/{chunkNum}` (the number as written).
    UploadChunk(&'a str, &'a str),
    /// `POST /api/fleet/uploads/{id}`.
    UploadComplete(&'a str),
    /// `GET /api/fleet/file/{id}`.
    FileDelivery(&'a str),
    /// `GET /api/fleet/artifacts/{id}/{sha2}` (Elastic Defend); carries both.
    Artifact(&'a str, &'a str),
    /// `GET /api/agents/upgrades/{major}.{minor}.{patch}/pgp-public-key`; carries the version.
    PgpKey(&'a str),
    /// `GET`/`HEAD /downloads/...`, the artifact mirror; carries the whole path.
    Download(&'a str),
    /// A path that exists, but not for this method; carries the allowed method.
    WrongMethod(&'static str),
    /// No such path.
    NotFound,
}

/// Classifies a request the way the Go server's router does: exact paths, no trailing-slash
/// folding.
pub fn route<'a>(method: &Method, path: &'a str) -> Route<'a> {
    if let Some(route) = uploads::route(method, path) {
        return route;
    }
    if let Some(route) = delivery::route(method, path) {
        return route;
    }
    let post = *method == Method::Post;
    let found = match path {
        "/api/status" => (*method == Method::Get, Route::Status, "GET"),
        "/api/fleet/agents/enroll" => (post, Route::Enroll, "POST"),
        opamp::PATH => (true, Route::OpAmp, ""),
        _ if path.starts_with(downloads::PREFIX) => (
            matches!(method, Method::Get | Method::Head),
            Route::Download(path),
            "GET, HEAD",
        ),
        _ if pgp::version_segment(path).is_some() => (
            *method == Method::Get,
            Route::PgpKey(pgp::version_segment(path).unwrap_or_default()),
            "GET",
        ),
        _ if path.starts_with("/api/fleet/artifacts/") => match path
            .trim_start_matches("/api/fleet/artifacts/")
            .split('/')
            .collect::<Vec<_>>()
            .as_slice()
        {
            [id, sha2] if !id.is_empty() && !sha2.is_empty() => {
                (*method == Method::Get, Route::Artifact(id, sha2), "GET")
            }
            _ => return Route::NotFound,
        },
        _ => match path
            .strip_prefix("/api/fleet/agents/")
            .map(|rest| rest.split('/').collect::<Vec<_>>())
            .as_deref()
        {
            Some([id, "checkin"]) if !id.is_empty() => (post, Route::Checkin(id), "POST"),
            Some([id, "acks"]) if !id.is_empty() => (post, Route::Acks(id), "POST"),
            Some([id, "audit", "unenroll"]) if !id.is_empty() => {
                (post, Route::AuditUnenroll(id), "POST")
            }
            _ => return Route::NotFound,
        },
    };
    match found {
        (true, route, _) => route,
        (false, _, allowed) => Route::WrongMethod(allowed),
    }
}

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// Body limits per route (fleet-protocol.md §10.2). Unrouted paths get a small cap so an unknown
/// URL cannot be used to make the server buffer a large body.
pub fn body_limits(method: &Method, path: &str) -> BodyLimits {
    let (max_body, max_decompressed) = match route(method, path) {
        Route::Checkin(_) => (MIB, checkin::MAX_DECOMPRESSED),
        Route::Enroll => (512 * KIB, 512 * KIB),
        Route::Acks(_) => (2 * MIB, 2 * MIB),
        Route::AuditUnenroll(_) => (KIB, KIB),
        Route::OpAmp => (opamp::MAX_MESSAGE, 20 * MIB),

        Route::UploadBegin => (uploads::BEGIN_MAX_BODY, uploads::BEGIN_MAX_BODY),
        Route::UploadChunk(..) => (uploads::CHUNK_MAX_BODY, uploads::CHUNK_MAX_BODY),
        Route::UploadComplete(_) => (uploads::COMPLETE_MAX_BODY, uploads::COMPLETE_MAX_BODY),
        Route::Status
        | Route::FileDelivery(_)
        | Route::PgpKey(_)
        | Route::Download(_)
        | Route::Artifact(..)
        | Route::WrongMethod(_)
        | Route::NotFound => (64 * KIB, 64 * KIB),
    };
    BodyLimits {
        max_body,
        max_decompressed,
        // A checkin's body is gunzipped by the worker that runs its store part.
        defer_gzip: matches!(route(method, path), Route::Checkin(_)),
    }
}

/// What to do with a request.
// One `Decision` lives for a moment per request and is moved once into the engine, which puts
// the job into the queue whole anyway: boxing it would add an allocation per request to save a
// copy of a few hundred bytes.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Decision {
    /// Answer now.
    Respond(Response),
    /// Run a backend job; finish with [`Pending::finish`] (or the loop's checkin logic).
    Job(Job, Pending),
}

/// Which endpoint a job belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PendingKind {
    /// Enroll.
    Enroll,
    /// Checkin (finished by the loop: it may park).
    Checkin,
    /// Acks.
    Ack,
    /// Authenticated status.
    Status,
    /// Audit unenroll.
    Audit,
    /// Management API.
    Admin,
    /// A plain-HTTP OpAMP message.
    OpAmp,
    /// The token check of an OpAMP WebSocket upgrade.
    OpAmpUpgrade,
    /// A message on an OpAMP WebSocket (no HTTP response).
    OpAmpMessage,
    /// An upload begin, chunk or complete.
    Upload,
    /// The upgrade PGP key.
    PgpKey,
    /// A file of the artifact mirror.
    Download,
    /// An Elastic Defend artifact.
    Artifact,
}

/// A request waiting for its backend job: what its response must carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    /// The endpoint.
    pub kind: PendingKind,
    /// Echoed or generated `X-Request-Id`.
    pub request_id: String,
    /// Negotiated `Elastic-Api-Version`.
    pub api_version: &'static str,
    /// The limiter this request holds until it is answered.
    pub limited: Option<LimitedRoute>,
    /// The version this server claims (for the status long form and refusal log lines).
    pub server_version: ServerVersion,
    /// The agent version of an enroll or checkin whose User-Agent this server does not admit:
    /// if the request is refused for it (after key validation), the refusal is logged.
    /// (A box, not a `String`: 8 bytes less in every request the engine holds, parked
    /// checkins included; issue 21.)
    pub refused_agent_version: Option<Box<str>>,
}

impl Pending {
    /// Adds the headers every routed response carries.
    pub fn decorate(&self, response: Response) -> Response {
        // The mirror is outside Fleet's API router: no API version on its answers.
        let response = match self.kind {
            PendingKind::Download => response,
            _ => response.with_header("Elastic-Api-Version", self.api_version),
        };
        response.with_header("X-Request-Id", self.request_id.clone())
    }

    /// Logs a refusal for the agent's version: the agent version, the version this server
    /// claims and the setting that raises it (fleet-protocol.md §1.5). One WARN per refused
    /// request; an agent retries with backoff, so the rate stays low.
    pub fn log_refusal(&self, error: &ApiError) {
        if let (ApiError::UnsupportedVersion, Some(agent)) = (error, &self.refused_agent_version) {
            let server = self.server_version;
            log::warn!(
                "refused an Elastic Agent {agent} ({:?}): this server claims Fleet Server {server} and admits agents up to {}.{}.x (agents may be newer only in the patch); to admit newer agents raise the claimed version with --server-version or FLEET_EDGE_SERVER_VERSION",
                self.kind,
                server.major,
                server.minor
            );
        }
    }

    /// The response for a finished enroll, ack or status job.
    pub fn finish(&self, output: JobOutput, health: Health) -> Response {
        let response = match output {
            JobOutput::Enrolled(Ok(body)) => Response::json(200, &body),
            JobOutput::Acked(Ok(outcome)) => Response::json(outcome.status, &outcome.body),
            JobOutput::Audited(Ok(())) => Response::new(200),
            JobOutput::Admin(status, body) => Response::json(status, &body),
            JobOutput::Authenticated(valid) => status::handle(health, valid, self.server_version),
            JobOutput::PgpKey(key) => pgp::answer(key),
            // The decoded (still compressed) bytes, no explicit Content-Type (§8).
            JobOutput::Artifact(Ok(bytes)) => {
                Response::new(200).with_body(crate::http::Body::Bytes(bytes))
            }
            JobOutput::Artifact(Err(e)) => errors::respond(&ApiError::from(&e)),
            JobOutput::Download(found) => {
                let (request, found) = *found;
                downloads::answer(&request, found)
            }
            JobOutput::OpAmp(Ok(outcome)) => opamp::http_answer(&outcome),
            JobOutput::Upload(Ok(answer)) => uploads::answer(answer),
            JobOutput::File(response) | JobOutput::Delivered(Ok(response)) => response,
            JobOutput::Delivered(Err(refusal)) => refusal.headers.into_iter().fold(
                errors::respond(&ApiError::from(&refusal.error)),
                |r, (n, v)| r.with_header(n, v),
            ),
            JobOutput::OpAmp(Err(refusal)) | JobOutput::OpAmpConnected(Err(refusal)) => {
                opamp::refusal(&refusal)
            }
            JobOutput::Enrolled(Err(e))
            | JobOutput::Acked(Err(e))
            | JobOutput::Audited(Err(e))
            | JobOutput::Upload(Err(e)) => {
                let e = ApiError::from(&e);
                self.log_refusal(&e);
                errors::respond(&e)
            }
            JobOutput::CheckinStarted(_)
            | JobOutput::Part(_)
            | JobOutput::OpAmpConnected(Ok(_))
            | JobOutput::OutputKeys(_)
            | JobOutput::CheckinsWritten { .. } => {
                errors::respond(&ApiError::Internal("unexpected backend reply".into()))
            }
        };
        self.decorate(response)
    }
}

/// The limiter of a route, if it has one.
pub fn limited_route(route: Route<'_>) -> Option<LimitedRoute> {
    match route {
        Route::Status => Some(LimitedRoute::Status),
        Route::Enroll => Some(LimitedRoute::Enroll),
        Route::Checkin(_) => Some(LimitedRoute::Checkin),
        Route::Acks(_) => Some(LimitedRoute::Ack),
        Route::AuditUnenroll(_) => Some(LimitedRoute::AuditUnenroll),
        Route::OpAmp => Some(LimitedRoute::OpAmp),

        Route::UploadBegin => Some(LimitedRoute::UploadStart),
        Route::UploadChunk(..) => Some(LimitedRoute::UploadChunk),
        Route::UploadComplete(_) => Some(LimitedRoute::UploadEnd),
        Route::FileDelivery(_) => Some(LimitedRoute::FileDelivery),
        Route::PgpKey(_)
        | Route::Download(_)
        | Route::Artifact(..)
        | Route::WrongMethod(_)
        | Route::NotFound => None,
    }
}

/// Runs the pipeline for one request: request id, route limiter (§1.2 step 5: its 429 carries
/// no `Elastic-Api-Version`), routing, version, handler.
pub fn handle(req: &Request, ctx: &mut Context<'_>) -> Decision {
    let request_id = request_id(req, ctx.request_ids);
    let limited = limited_route(route(&req.method, &req.path));
    if let Some(limited) = limited {
        if let Err(refusal) = ctx.limits.get(limited).acquire(ctx.now) {
            let err = match refusal {
                Refusal::Rate => ApiError::RateLimit,
                Refusal::Concurrency => ApiError::MaxLimit,
            };
            return Decision::Respond(
                errors::respond(&err).with_header("X-Request-Id", request_id),
            );
        }
    }
    match dispatch(req, ctx, request_id.clone(), limited) {
        Decision::Respond(response) => {
            if let Some(limited) = limited {
                ctx.limits.get(limited).release();
            }
            Decision::Respond(response.with_header("X-Request-Id", request_id))
        }
        job => job,
    }
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

/// The router's answer to an unknown path: Go's `http.NotFound`, which is `http.Error` with its
/// `Fprintln` (trailing newline) and its `X-Content-Type-Options: nosniff`.
pub fn not_found() -> Response {
    Response::text(404, "404 page not found\n").with_header("X-Content-Type-Options", "nosniff")
}

fn request_id(req: &Request, ids: &mut RequestIds) -> String {
    match req.header_str("x-request-id") {
        Some(id) if !id.trim().is_empty() => id.trim().to_owned(),
        _ => ids.next_id(),
    }
}

fn dispatch(
    req: &Request,
    ctx: &mut Context<'_>,
    request_id: String,
    limited: Option<LimitedRoute>,
) -> Decision {
    let route = route(&req.method, &req.path);
    match route {
        Route::NotFound => return Decision::Respond(not_found()),
        Route::WrongMethod(allowed) => {
            return Decision::Respond(Response::new(405).with_header("Allow", allowed))
        }
        // Outside Fleet's API router: no Elastic-Api-Version negotiation.
        Route::OpAmp if !ctx.has_store => {
            return Decision::Respond(errors::respond(&ApiError::StoreUnavailable))
        }
        Route::OpAmp => {
            return opamp::handle(req, |kind| Pending {
                kind,
                request_id: request_id.clone(),
                api_version: version::DEFAULT,
                limited,
                server_version: ctx.server_version,
                refused_agent_version: None,
            })
        }
        // The mirror is a static file site, outside Fleet's API router.
        Route::Download(_) => {
            let Some(root) = &ctx.files.mirror else {
                return Decision::Respond(not_found());
            };
            return Decision::Job(
                Job::Download(downloads::request(req, root.clone())),
                Pending {
                    kind: PendingKind::Download,
                    request_id: request_id.clone(),
                    api_version: version::DEFAULT,
                    limited,
                    server_version: ctx.server_version,
                    refused_agent_version: None,
                },
            );
        }
        Route::Status
        | Route::Enroll
        | Route::Checkin(_)
        | Route::Acks(_)
        | Route::AuditUnenroll(_)
        | Route::UploadBegin
        | Route::UploadChunk(..)
        | Route::UploadComplete(_)
        | Route::FileDelivery(_)
        | Route::Artifact(..)
        | Route::PgpKey(_) => {}
    }
    let api_version = match version::negotiate(req) {
        Ok(v) => v,
        Err(rejection) => return Decision::Respond(rejection),
    };
    // §1.5: only enroll and checkin check the User-Agent (the store answers the refusal after
    // validating the key).
    let ua_check = match route {
        Route::Enroll | Route::Checkin(_) => Some(user_agent::check(req, ctx.server_version)),
        _ => None,
    };
    let refused_agent_version = match &ua_check {
        Some(Err(user_agent::Refusal::Unsupported(v))) => Some(Box::<str>::from(v.as_str())),
        _ => None,
    };
    let agent_version = || match &ua_check {
        Some(Ok(v)) => Ok(v.clone()),
        Some(Err(refusal)) => Err(refusal.op_error()),
        None => Err(OpError::InvalidUserAgent),
    };
    let pending = |kind| Pending {
        kind,
        request_id: request_id.clone(),
        api_version,
        limited,
        server_version: ctx.server_version,
        refused_agent_version: refused_agent_version.clone(),
    };
    let respond = |response: Response| {
        Decision::Respond(response.with_header("Elastic-Api-Version", api_version))
    };
    if let Route::PgpKey(version) = route {
        // The binder's parameter check runs before the handler's TLS check.
        if let Err(refused) = pgp::check_version(version) {
            return respond(refused);
        }
        if !req.tls {
            return respond(pgp::tls_required());
        }
        return Decision::Job(
            Job::PgpKey(std::sync::Arc::clone(&ctx.files.pgp)),
            pending(PendingKind::PgpKey),
        );
    }
    if let Route::Status = route {
        // The long form needs the key checked by the store; any auth failure is the short form.
        return match (ctx.has_store, auth::api_key(req)) {
            (true, Ok(key)) => Decision::Job(Job::Authenticate(key), pending(PendingKind::Status)),
            _ => respond(status::handle(ctx.health, false, ctx.server_version)),
        };
    }
    if !ctx.has_store {
        return respond(errors::respond(&ApiError::StoreUnavailable));
    }
    let upload = match route {
        Route::UploadBegin => Some(uploads::begin(req)),
        Route::UploadChunk(id, n) => Some(uploads::chunk(req, id, n)),
        Route::UploadComplete(id) => Some(uploads::complete(req, id)),
        Route::FileDelivery(id) => Some(delivery::deliver(req, id)),
        _ => None,
    };
    if let Some(upload) = upload {
        return match upload {
            Ok(job) => Decision::Job(job, pending(PendingKind::Upload)),
            Err(e) => respond(errors::respond(&e)),
        };
    }
    let key = match auth::api_key(req) {
        Ok(key) => key,
        Err(e) => return respond(errors::respond(&e)),
    };
    match route {
        Route::Enroll => Decision::Job(
            Job::Enroll(EnrollInput {
                key,
                agent_version: agent_version(),
                body: enroll::parse(&req.body),
                pbkdf2_iterations: ctx.pbkdf2_iterations,
                enrollment_id: serde_json::from_slice::<serde_json::Value>(&req.body)
                    .ok()
                    .and_then(|v| v.get("enrollment_id")?.as_str().map(str::to_owned))
                    .filter(|e| !e.is_empty()),
                client_ip: req.peer,
            }),
            pending(PendingKind::Enroll),
        ),
        Route::Checkin(agent_id) => {
            // Duplicated encoding/id header lines are the generated binder's 500 (§1.2).
            for name in [
                "content-encoding",
                "accept-encoding",
                "x-request-id",
                "elastic-api-version",
            ] {
                let count = req.header_count(name);
                if count > 1 {
                    return respond(errors::respond(&ApiError::Internal(format!(
                        "Expected one value for {name}, got {count}"
                    ))));
                }
            }
            let gzip = crate::http::gzip_encoded(req) && !req.body.is_empty();
            Decision::Job(
                Job::CheckinStart(CheckinInput {
                    key,
                    agent_id: agent_id.to_owned(),
                    agent_version: agent_version(),
                    // A gzip body stays compressed until the worker (issue 15 §3); `body` is
                    // then not read.
                    body: if gzip {
                        Err(OpError::Invalid("gzip body parsed by the worker".into()))
                    } else {
                        checkin::parse(&req.body)
                    },
                    deferred: gzip.then(|| {
                        Box::new(DeferredBody {
                            gzip: req.body.clone(),
                            parse: checkin::parse_gzip,
                        })
                    }),
                }),
                pending(PendingKind::Checkin),
            )
        }
        Route::Acks(agent_id) => Decision::Job(
            Job::Ack(AckInput {
                key,
                agent_id: agent_id.to_owned(),
                body: ack::parse(&req.body),
            }),
            pending(PendingKind::Ack),
        ),
        Route::Artifact(identifier, sha2) => Decision::Job(
            Job::Artifact(
                crate::backend::ops::artifacts::ArtifactInput {
                    key,
                    identifier: identifier.to_owned(),
                    sha2: sha2.to_owned(),
                },
                std::sync::Arc::clone(&ctx.files.endpoint_artifacts),
            ),
            pending(PendingKind::Artifact),
        ),
        Route::AuditUnenroll(agent_id) => Decision::Job(
            Job::AuditUnenroll(crate::backend::interface::AuditInput {
                key,
                agent_id: agent_id.to_owned(),
                body: audit::parse(&req.body),
            }),
            pending(PendingKind::Audit),
        ),
        Route::Status
        | Route::OpAmp
        | Route::UploadBegin
        | Route::UploadChunk(..)
        | Route::UploadComplete(_)
        | Route::FileDelivery(_)
        | Route::PgpKey(_)
        | Route::Download(_)
        | Route::WrongMethod(_)
        | Route::NotFound => respond(not_found()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, headers: &[(&str, &str)]) -> Request {
        Request {
            peer: None,
            tls: true,
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
        let mut limits = RouteLimits::default();
        match handle(
            req,
            &mut Context {
                health,
                request_ids: &mut ids,
                has_store: false,
                pbkdf2_iterations: 1000,
                server_version: crate::server_version::BUILT_IN,
                limits: &mut limits,
                now: std::time::Instant::now(),
                files: &crate::api::serving::FileServing::default(),
            },
        ) {
            Decision::Respond(r) => r,
            Decision::Job(job, _) => panic!("unexpected job {job:?}"),
        }
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
        assert_eq!(r.body_bytes(), b"404 page not found\n");
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
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
    fn agent_routes_are_classified() {
        assert_eq!(
            route(&Method::Post, "/api/fleet/agents/enroll"),
            Route::Enroll
        );
        assert_eq!(
            route(&Method::Post, "/api/fleet/agents/abc/checkin"),
            Route::Checkin("abc")
        );
        assert_eq!(
            route(&Method::Post, "/api/fleet/agents/abc/acks"),
            Route::Acks("abc")
        );
        assert_eq!(
            route(&Method::Get, "/api/fleet/agents/abc/acks"),
            Route::WrongMethod("POST")
        );
        assert_eq!(
            route(&Method::Post, "/api/fleet/agents//checkin"),
            Route::NotFound
        );
        assert_eq!(
            route(&Method::Post, "/api/fleet/agents/a/b/checkin"),
            Route::NotFound
        );
        assert_eq!(
            body_limits(&Method::Post, "/api/fleet/agents/x/checkin").max_decompressed,
            20 * MIB
        );
    }

    #[test]
    fn agent_endpoints_without_a_store_are_503_not_401() {
        let mut req = get("/api/fleet/agents/enroll", &[]);
        req.method = Method::Post;
        let r = run(&req, Health::Healthy);
        assert_eq!(r.status, 503);
        assert!(r.header("retry-after").is_some());
    }

    #[test]
    fn route_limits_answer_the_spec_429_without_api_version() {
        use crate::api::limits::LimitSpec;
        let mut ids = RequestIds::new(1);
        let mut limits = RouteLimits::with(|_| LimitSpec {
            interval: std::time::Duration::from_secs(3600),
            burst: 1,
            max: 0,
        });
        let now = std::time::Instant::now();
        let mut answer = || match handle(
            &get("/api/status", &[]),
            &mut Context {
                health: Health::Healthy,
                request_ids: &mut ids,
                has_store: false,
                pbkdf2_iterations: 1000,
                server_version: crate::server_version::BUILT_IN,
                limits: &mut limits,
                now,
                files: &crate::api::serving::FileServing::default(),
            },
        ) {
            Decision::Respond(r) => r,
            Decision::Job(..) => panic!("job"),
        };
        assert_eq!(answer().status, 200);
        let limited = answer();
        assert_eq!(limited.status, 429);
        let body: serde_json::Value = serde_json::from_slice(limited.body_bytes()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"statusCode": 429, "error": "RateLimit", "message": "exceeded the rate limit"})
        );
        assert!(limited.header("elastic-api-version").is_none());
        assert!(limited.header("x-request-id").is_some());
    }

    #[test]
    fn opamp_is_limited_by_opamp_limit_from_the_code_defaults() {
        use crate::api::limits::SIZING_TABLES;
        assert_eq!(limited_route(Route::OpAmp), Some(LimitedRoute::OpAmp));
        let spec = LimitedRoute::OpAmp.default_spec();
        assert_eq!(
            (spec.interval, spec.burst, spec.max),
            (std::time::Duration::from_millis(1), 1000, 0)
        );
        for table in SIZING_TABLES {
            assert_eq!(table.spec(LimitedRoute::OpAmp), spec, "{}", table.name);
        }
        assert_eq!(route(&Method::Get, "/v1/opamp"), Route::OpAmp);
        assert_eq!(route(&Method::Post, "/v1/opamp/"), Route::NotFound);
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
