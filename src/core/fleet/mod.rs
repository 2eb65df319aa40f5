//! The Fleet engine: the only owner of Fleet state, sans-IO. It decides what every request
//! gets (an answer now, a backend job, a parked long poll), what every backend reply and store
//! event means, and when checkin state is written; the event loop in `net` only moves bytes,
//! jobs and clock readings in and out of it. `src/core/LIFECYCLE.md` follows one checkin
//! through it.
//!
//! * `mod.rs`: [`Fleet`], the request pipeline's entry (management, connection gate,
//!   `api::handle`), and the per-connection in-flight requests.
//! * `io.rs`: what crosses the boundary: connection keys, reply destinations, origins, outputs.
//! * `checkin.rs`: a checkin's store part done → answer, deliver a POLICY_CHANGE, or park; the
//!   early-action window; live action dispatch; long-poll expiry.
//! * `rollout.rs`: new policy revisions and their paced wake-up of parked agents.
//! * `writer.rs`: the checkin bulk writer and the management API's read-your-writes rule.
//! * `opamp.rs`: OpAMP replies (HTTP answers, WebSocket messages, upgrades).
//! * `overdue.rs`: request deadlines; a request whose job's reply does not come by then is
//!   answered 503 with `Retry-After` (issue 15 §1).
//! * `testing.rs`: the scenario harness (virtual clock, scripted backend, invariants);
//!   `replay.rs`: arbitrary operation sequences through it (the `core_ops` fuzz target).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

mod checkin;
mod io;
mod opamp;
mod overdue;
mod refusals;
pub mod replay;
mod rollout;
#[cfg(test)]
mod scenarios;
pub mod testing;
mod timing;
mod writer;

use super::deadlines::{Deadlines, Ticket};
use super::longpoll::{PolicyCache, PollSettings, Repeat, Waiter, Waiters};
use crate::api::health::{Health, HealthCell};
use crate::api::ids::RequestIds;
use crate::api::limits::{LimitedRoute, RouteLimits, SizingTable};
use crate::api::{self, errors, ApiError, Decision, Pending, PendingKind};
use crate::backend::interface::{Event, Job, JobOutput, Reply};
use crate::backend::ApiKey;
use crate::http::{Request, Response};
use crate::server_version::ServerVersion;
use crate::transform::prepared_policy::PreparedPolicy;

pub use io::{ConnKey, Origin, Output, ReplyTo};

/// What the engine is configured with.
#[derive(Clone, Debug)]
pub struct FleetSettings {
    /// Long-poll hold times.
    pub poll: PollSettings,
    /// How often checkin state is written to the store (fleet-protocol.md §3.8: 10 s).
    pub checkin_flush: Duration,
    /// How often a parked agent's `last_checkin` is refreshed (`checkin_timestamp`, 30 s).
    pub checkin_timestamp: Duration,
    /// PBKDF2 iterations for replace tokens.
    pub pbkdf2_iterations: u32,
    /// The Fleet Server version this server claims.
    pub server_version: ServerVersion,
    /// The sizing table the route limits come from (`None`: the code defaults).
    pub limits_table: Option<&'static SizingTable>,
    /// Whether a store is attached (without one, agent endpoints answer 503 and nothing is
    /// written).
    pub has_store: bool,
    /// Who may call the management API: its admin token and named operator tokens (when the
    /// management listener is enabled).
    pub admin_token: Option<crate::mgmt::token::Credentials>,
    /// Seeds request ids and long-poll jitter.
    pub seed: u64,
    /// How long an agent request other than a checkin may wait for its backend jobs
    /// (`--backend-timeout`; a checkin has its long poll, at least this).
    pub backend_timeout: Duration,
    /// The artifact mirror, the PGP key and the Elastic Defend artifact cache.
    pub files: crate::api::serving::FileServing,
}

/// A request handed to the backend (or parked), waiting for its answer.
#[derive(Debug)]
struct Inflight {
    /// What the response must carry.
    pending: Pending,
    /// When the request arrived (long-poll setup time counts from here).
    started: Instant,
    /// The entry of [`Fleet::starting`] or [`Fleet::enrolling`] this request holds (a request is
    /// a checkin or an enroll, never both: one field, 16 bytes less in every record).
    holds: Option<Holds>,
    /// Checkin progress after its store part.
    checkin: Option<CheckinWait>,
    /// By when its backend jobs must have replied (`None`: management requests and OpAMP
    /// WebSocket messages, which the engine does not answer on its own).
    deadline: Option<Instant>,
    /// The ticket in [`Fleet::overdue`] while a job of this request is out.
    overdue: Option<Ticket>,
    /// A parked checkin's timing record, out of [`timing::Timing`]'s table while it is parked
    /// (a slot there times the table's slack per parked agent; issue 21); back there when
    /// the record is taken ([`Fleet::take_inflight`]).
    open: Option<timing::Open>,
}

impl Inflight {
    /// A request that arrived at `started` and waits for a job.
    /// A request that arrived at `started` and waits for a job, with no deadline of its own
    /// (`start_job` gives agent requests theirs).
    fn new(pending: Pending, started: Instant) -> Self {
        Self {
            pending,
            started,
            holds: None,
            checkin: None,
            deadline: None,
            overdue: None,
            open: None,
        }
    }
}

/// What an in-flight request holds in the engine's maps of requests by id.
#[derive(Debug)]
enum Holds {
    /// The agent of a checkin between its submission and its store part's reply
    /// ([`Fleet::starting`]).
    Starting(String),
    /// The enrollment id of an enroll that other enrolls with the same id must wait for
    /// ([`Fleet::enrolling`]).
    Enrolling(String),
}

/// Where a checkin is after its store part.
#[derive(Debug)]
struct CheckinWait {
    /// The agent (the parked waiter's allocation).
    agent_id: Arc<str>,
    /// The long-poll deadline's ticket while parked (`None`: a job is running).
    parked: Option<Ticket>,
    /// The revision being delivered while its output keys are made.
    policy: Option<Arc<PreparedPolicy>>,
    /// The waiter while parked, indexed by [`Fleet::waiters`]: kept here, in the record every
    /// parked checkin has, not in a table of its own (issue 21).
    waiter: Option<Waiter>,
}

/// The engine's periodic timers (one deadline each; the long polls have their own heap).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timer {
    /// The next paced rollout step.
    Rollout = 0,
    /// The next write of pending checkin state.
    BulkFlush = 1,
    /// The next `last_checkin` refresh of parked agents.
    CheckinTimestamp = 2,
}

const TIMERS: [Timer; 3] = [Timer::Rollout, Timer::BulkFlush, Timer::CheckinTimestamp];

/// Fleet state and logic for one server: requests, parked long polls, rollouts, the bulk
/// writer, route limits and health.
///
/// Objects of this type receive requests, backend replies and store events, and emit
/// [`Output`]s (answers for connections, jobs for the backend) to make progress. To handle
/// timeouts, a `Fleet` reports its next deadline and expects to be told when it has passed. It
/// reads no clock: every method that needs the time takes `now` (monotonic) and, where a
/// document gets a timestamp, `wall`.
///
/// `Fleet` has roughly 3 types of methods:
///
/// - A. Simple getters, taking `&self` ([`parked`](Self::parked),
///   [`late_replies`](Self::late_replies), [`writer_idle`](Self::writer_idle), …).
/// - B. Handlers for incoming events, named `handle_*`: a decoded request
///   ([`handle_request`](Self::handle_request)) or WebSocket message, a backend reply, a store
///   event, a timeout, a closed connection, a refused job, the start of the drain.
/// - C. Polling functions for what the caller must do, named `poll_*`.
///
/// The simplest way to use this API correctly is to call (B) whenever something happens, then,
/// as soon as feasible, call the polling methods (C) and act on their results. Call them in
/// this order:
///
/// 1. [`poll_output`](Self::poll_output) until it returns `None`: write each answer on its
///    connection, submit each job (and report a refused one through
///    [`handle_refused`](Self::handle_refused), which queues more output);
/// 2. [`poll_timeout`](Self::poll_timeout): the earliest instant at which
///    [`handle_timeout`](Self::handle_timeout) must be called.
///
/// (2) depends on (1): submitting and answering may arm or cancel deadlines. Writing an answer
/// may make the connection ready for its next request, which the caller hands in with
/// `handle_request` and whose output it polls in the same loop (no recursion is needed).
///
/// Input time must be monotonic: `now` never goes backwards between calls. Every answer is for
/// a connection the engine was told about and not told is closed: after
/// [`handle_close`](Self::handle_close), nothing more is emitted for that connection, and a
/// reply that arrives for it later is dropped and counted ([`late_replies`](Self::late_replies)).
/// A connection has at most one request in the engine at a time; the caller reads the next one
/// only after the answer to the current one.
pub struct Fleet {
    settings: FleetSettings,
    /// The engine's own view: `Stopping` while draining, `Degraded` while the store is away.
    health: Health,
    /// The agent-mode self-monitor's state, reported while the engine's own view is healthy
    /// (fleet-protocol.md §6.5: `/api/status` follows the self-monitor).
    monitor: Option<Arc<HealthCell>>,
    ids: RequestIds,
    limits: RouteLimits,
    cache: PolicyCache,
    waiters: Waiters<ConnKey>,
    /// The repeated checkin members parked last, shared with the next parks that repeat the
    /// same ([`Repeat::share`]).
    last_repeat: Repeat,
    rollouts: rollout::Rollouts,
    /// Agents whose checkin is between its pending-actions query and parking (§3.2 subscribes
    /// before querying; this is the equivalent): live actions for them are kept in `early`.
    starting: HashMap<String, ConnKey>,
    /// Enrollment ids of enrolls in flight (§2.3: a concurrent one gets 429 `EnrollDuplicate`).
    enrolling: HashMap<String, ConnKey>,
    /// Live actions that arrived for a starting checkin: wire actions and the ack token.
    early: HashMap<String, (checkin::Sequenced, String)>,
    writer: writer::Writer,
    /// Boxed: a 24-byte slot, not the 256-byte record times the table's slack (issue 21).
    inflight: HashMap<ConnKey, Box<Inflight>>,
    /// Long-poll deadlines of parked checkins (lazy cancellation by ticket).
    long_polls: Deadlines<ConnKey>,
    /// Deadlines (plus grace) of requests waiting for a job (lazy cancellation by ticket).
    overdue: Deadlines<ConnKey>,
    /// [`Timer`] deadlines.
    timers: [Option<Instant>; 3],
    outputs: VecDeque<Output>,
    /// Connections with an answer in `outputs` (so a close purges only when there is one).
    answering: HashSet<ConnKey>,
    draining: bool,
    late_replies: u64,
    early_actions: u64,
    overdue_answers: u64,
    /// Wrong-token attempts at the console's login.
    login_guard: crate::mgmt::console::LoginGuard,
    /// When the engine was made (uptime in the health figures).
    started: Instant,
    /// Per-route counts and latencies (the monitoring endpoint's).
    timing: timing::Timing,
}

impl Fleet {
    /// An engine with nothing parked; the writer's timers start at `now`.
    pub fn new(settings: FleetSettings, health: Health, now: Instant) -> Self {
        let table = settings.limits_table;
        let limits_spec = move |route: LimitedRoute| match table {
            Some(table) => table.spec(route),
            None => route.default_spec(),
        };
        let mut timers = [None; 3];
        if settings.has_store {
            timers[Timer::BulkFlush as usize] = Some(now + settings.checkin_flush);
            timers[Timer::CheckinTimestamp as usize] = Some(now + settings.checkin_timestamp);
        }
        Self {
            ids: RequestIds::new(settings.seed),
            limits: RouteLimits::with(limits_spec),
            rollouts: rollout::Rollouts::new(
                limits_spec(LimitedRoute::Ack),
                limits_spec(LimitedRoute::Checkin),
            ),
            settings,
            health,
            monitor: None,
            cache: PolicyCache::default(),
            waiters: Waiters::default(),
            last_repeat: Repeat::default(),
            starting: HashMap::new(),
            enrolling: HashMap::new(),
            early: HashMap::new(),
            writer: writer::Writer::default(),
            inflight: HashMap::new(),
            long_polls: Deadlines::new(),
            overdue: Deadlines::new(),
            timers,
            outputs: VecDeque::new(),
            answering: HashSet::new(),
            draining: false,
            late_replies: 0,
            early_actions: 0,
            overdue_answers: 0,
            login_guard: Default::default(),
            started: now,
            timing: timing::Timing::new(now),
        }
    }

    // A. Getters and configuration.

    /// Checkins parked right now.
    pub fn parked(&self) -> usize {
        self.waiters.len()
    }

    /// Requests by route: counts and latencies (shared with the monitoring endpoint).
    pub fn route_stats(&self) -> Arc<crate::mgmt::route_stats::RouteStats> {
        self.timing.stats()
    }

    /// Backend replies that arrived for a connection that had gone.
    pub fn late_replies(&self) -> u64 {
        self.late_replies
    }

    /// Live actions held for a checkin that was reading pending actions when they arrived.
    pub fn early_actions(&self) -> u64 {
        self.early_actions
    }

    /// Requests answered 503 because their job had not replied by their deadline.
    pub fn overdue_answers(&self) -> u64 {
        self.overdue_answers
    }

    /// Whether no checkin state waits to be written and no write is in flight (the drain
    /// waits for this).
    pub fn writer_idle(&self) -> bool {
        self.writer.idle()
    }

    /// Whether the engine holds a request of `conn` (a job running, or parked).
    pub fn in_flight(&self, conn: ConnKey) -> bool {
        self.inflight.contains_key(&conn)
    }

    /// Agents whose checkin state is not written yet.
    pub fn pending_writes(&self) -> usize {
        self.writer.pending()
    }

    /// What `GET /api/status` reports now.
    pub fn health(&self) -> Health {
        match (&self.monitor, self.health) {
            (Some(cell), Health::Healthy) => cell.get(),
            (_, own) => own,
        }
    }

    /// Makes `GET /api/status` report `cell` (the self-monitor's state) whenever the engine
    /// itself is healthy.
    pub fn follow_health(&mut self, cell: Arc<HealthCell>) {
        self.monitor = Some(cell);
    }

    /// Replaces the management API's tokens (SIGHUP re-reads them).
    pub fn set_admin_token(&mut self, token: crate::mgmt::token::Credentials) {
        if self.settings.admin_token.is_some() {
            self.settings.admin_token = Some(token);
        }
    }

    /// `GET /api/fleet/fleet_edge/health`: what the engine knows of the server's health.
    fn server_health(&self, now: Instant) -> Response {
        Response::json(
            200,
            &serde_json::json!({
                "status": self.health().as_str(),
                "store": if self.settings.has_store { "attached" } else { "none" },
                "parked_long_polls": self.parked(),
                "requests_in_flight": self.inflight.len(),
                "checkin_writes_pending": self.pending_writes(),
                "late_backend_replies": self.late_replies,
                "draining": self.draining,
                "uptime_seconds": now.saturating_duration_since(self.started).as_secs(),
            }),
        )
    }

    // B. Handlers.

    /// A decoded request on `conn`, which has no other request in the engine.
    /// `wall` is the wall-clock time (console sessions expire by it: a cookie outlives the
    /// process). `arrived` is when the request began as far as the server can tell (the
    /// connection's accept for its first request, so a slow TLS handshake counts against the
    /// request's deadline as it does on the agent's clock; `now` for the others).
    pub fn handle_request(
        &mut self,
        conn: ConnKey,
        origin: Origin,
        req: &Request,
        (arrived, now): (Instant, Instant),
        wall: SystemTime,
    ) {
        self.timing.begin(conn, origin, req, now);
        let arrived = arrived.min(now);
        let decision = match origin {
            Origin::Management => {
                let request_id = self.ids.next_id();
                let none = crate::mgmt::token::Credentials::default();
                let creds = self.settings.admin_token.as_ref().unwrap_or(&none);
                let wall = wall
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                match crate::mgmt::handle(req, creds, &mut self.login_guard, now, wall) {
                    Err(response) => {
                        Decision::Respond(response.with_header("X-Request-Id", request_id))
                    }
                    Ok(admin) if admin.route == crate::mgmt::Route::ServerHealth => {
                        Decision::Respond(
                            self.server_health(now)
                                .with_header("X-Request-Id", request_id),
                        )
                    }
                    Ok(admin) => {
                        let pending = Pending {
                            kind: PendingKind::Admin,
                            request_id,
                            api_version: api::version::DEFAULT,
                            limited: None,
                            server_version: self.settings.server_version,
                            refused_agent_version: None,
                        };
                        self.inflight
                            .insert(conn, Box::new(Inflight::new(pending, now)));
                        return self.submit_admin(conn, admin);
                    }
                }
            }
            Origin::OverCapacity => {
                Decision::Respond(api::capacity_exceeded(Some(req), &mut self.ids))
            }
            Origin::Reserve if req.path != "/api/status" => {
                Decision::Respond(api::capacity_exceeded(Some(req), &mut self.ids))
            }
            Origin::Agent | Origin::Reserve => api::handle(
                req,
                &mut api::Context {
                    health: self.health(),
                    request_ids: &mut self.ids,
                    has_store: self.settings.has_store,
                    pbkdf2_iterations: self.settings.pbkdf2_iterations,
                    server_version: self.settings.server_version,
                    limits: &mut self.limits,
                    now,
                    files: &self.settings.files,
                },
            ),
        };
        match decision {
            Decision::Respond(response) => {
                log::debug!("{:?} {} -> {}", req.method, req.path, response.status);
                self.emit(Output::Respond {
                    conn,
                    response,
                    close: false,
                });
            }
            Decision::Job(job, pending) => self.start_job(conn, job, pending, arrived),
        }
    }

    /// A binary message on an OpAMP WebSocket of `conn` (upgraded with `token`).
    pub fn handle_message(&mut self, conn: ConnKey, token: ApiKey, body: Vec<u8>, now: Instant) {
        self.timing.tick(now);
        let pending = Pending {
            kind: PendingKind::OpAmpMessage,
            request_id: String::new(),
            api_version: api::version::DEFAULT,
            limited: None,
            server_version: self.settings.server_version,
            refused_agent_version: None,
        };
        let job = Job::OpAmp(crate::backend::ops::opamp::OpAmpInput {
            key: token,
            authenticate: false,
            body,
            websocket: true,
            remote_configs: Vec::new(),
        });
        self.start_job(conn, job, pending, now);
    }

    /// A backend job's result.
    pub fn handle_reply(&mut self, reply: Reply<ReplyTo>, now: Instant, wall: SystemTime) {
        self.timing.tick(now);
        let key = match reply.to {
            ReplyTo::Writer => return self.checkins_written(reply.output, now, wall),
            ReplyTo::Part(conn, expected) => return self.part_read(conn, expected, reply.output),
            ReplyTo::Conn(key) => key,
        };
        let mut output = reply.output;
        if let JobOutput::OpAmp(Ok(outcome)) = &mut output {
            // A handled message's state is written whether or not its connection is still there.
            if let Some((agent_id, state)) = outcome.checkin.take() {
                self.writer.merge(agent_id, state);
            }
        }
        if !self.job_replied(key) {
            self.late_replies += 1;
            return;
        }
        let Some(inflight) = self.inflight.get(&key) else {
            return;
        };
        let kind = inflight.pending.kind;
        match (kind, output) {
            (PendingKind::Checkin, JobOutput::CheckinStarted(result)) => {
                self.checkin_started(key, *result, now)
            }
            (PendingKind::Checkin, JobOutput::OutputKeys(result)) => self.keys_ready(key, result),
            (PendingKind::OpAmp | PendingKind::OpAmpMessage, JobOutput::OpAmp(result)) => {
                self.opamp_answered(key, result)
            }
            (PendingKind::OpAmpUpgrade, JobOutput::OpAmpConnected(Ok((accept, token)))) => {
                self.opamp_upgraded(key, accept, token)
            }
            (_, output) => {
                let response = inflight.pending.finish(output, self.health());
                self.finish(key, response);
            }
        }
    }

    /// A change in the store.
    pub fn handle_event(&mut self, event: Event, now: Instant) {
        self.timing.tick(now);
        match event {
            Event::Policy(policy) => self.new_revision(policy, now),
            Event::PolicyRejected {
                policy_id,
                revision,
                reason,
            } => log::error!("policy {policy_id} revision {revision} cannot be served, keeping the previous one: {reason}"),
            Event::Actions(actions) => self.dispatch_actions(&actions),
            Event::StoreReachable(up) => {
                if !self.draining {
                    self.health = if up { Health::Healthy } else { Health::Degraded };
                }
                if up {
                    log::info!("store reachable again");
                }
            }
        }
    }

    /// Fires every deadline due at `now`.
    pub fn handle_timeout(&mut self, now: Instant, wall: SystemTime) {
        self.timing.tick(now);
        while let Some((key, ticket)) = self.long_polls.expired(now) {
            self.long_poll_expired(key, ticket);
        }
        while let Some((key, ticket)) = self.overdue.expired(now) {
            self.job_overdue(key, ticket);
        }
        for timer in TIMERS {
            let slot = &mut self.timers[timer as usize];
            if !slot.is_some_and(|at| at <= now) {
                continue;
            }
            *slot = None;
            match timer {
                Timer::Rollout => self.pace_rollouts(now),
                Timer::BulkFlush => {
                    self.flush_checkins(now, wall);
                    self.timers[timer as usize] = Some(now + self.settings.checkin_flush);
                }
                Timer::CheckinTimestamp => {
                    self.refresh_parked_checkins(wall);
                    self.timers[timer as usize] = Some(now + self.settings.checkin_timestamp);
                }
            }
        }
    }

    /// `conn` is gone: its request, parked or not, is forgotten; nothing more is emitted for it.
    pub fn handle_close(&mut self, conn: ConnKey) {
        if self.answering.remove(&conn) {
            self.outputs.retain(|o| answer_for(o) != Some(conn));
        }
        self.writer.forget(conn);
        // First: a parked checkin's timing record goes back to the timing table.
        self.take_inflight(conn);
        self.timing.closed(conn);
    }

    /// The backend refused `job` (queue full, the queue ahead cannot drain by its deadline, or
    /// no store): a connection's request is answered 503 at once; a checkin batch goes back to
    /// the pending state.
    pub fn handle_refused(&mut self, to: ReplyTo, job: Job) {
        match to {
            ReplyTo::Conn(conn) => {
                log::debug!("the backend cannot take the job in time: answering 503");
                self.job_replied(conn);
                self.respond(conn, errors::respond(&ApiError::StoreUnavailable));
            }
            ReplyTo::Writer => self.batch_refused(job),
            ReplyTo::Part(conn, expected) => self.outputs.push_back(Output::Part {
                conn,
                expected,
                bytes: Err("the backend cannot take the part's read in time".into()),
            }),
        }
    }

    /// A connection streaming a [`crate::http::Body::Parts`] body needs its next part: a job
    /// reads it (the connection holds one part at a time, asked for as its socket drains).
    /// The read is due within the backend timeout (the request itself was answered already).
    pub fn handle_part(&mut self, conn: ConnKey, part: crate::http::BodyPart, now: Instant) {
        self.timing.tick(now);
        self.outputs.push_back(Output::Submit {
            to: ReplyTo::Part(conn, part.take),
            job: Job::ReadPart(part),
            deadline: now + self.settings.backend_timeout,
        });
    }

    fn part_read(&mut self, conn: ConnKey, expected: u64, output: JobOutput) {
        let bytes = match output {
            JobOutput::Part(bytes) => bytes,
            other => Err(format!("unexpected reply to a part read: {other:?}")),
        };
        self.outputs.push_back(Output::Part {
            conn,
            expected,
            bytes,
        });
    }

    /// Shutdown begins (§3.2: parked long polls are answered 200 with no actions); pending
    /// checkin state is written.
    pub fn handle_drain(&mut self, now: Instant, wall: SystemTime) {
        self.timing.tick(now);
        self.draining = true;
        self.health = Health::Stopping;
        for key in self.waiters.keys() {
            self.respond(key, checkin::empty_response());
        }
        self.flush_checkins(now, wall);
    }

    // C. Polling.

    /// The next thing the caller must do.
    pub fn poll_output(&mut self) -> Option<Output> {
        let output = self.outputs.pop_front()?;
        if let Some(conn) = answer_for(&output) {
            self.answering.remove(&conn);
        }
        Some(output)
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers
            .iter()
            .flatten()
            .copied()
            .chain(self.long_polls.next_at())
            .chain(self.overdue.next_at())
            .min()
    }

    // Shared steps.

    /// Records a request that waits for `job`, and submits it (enrolls with an enrollment id
    /// already in flight are answered `EnrollDuplicate` instead).
    fn start_job(&mut self, conn: ConnKey, mut job: Job, pending: Pending, now: Instant) {
        let mut inflight = Box::new(Inflight::new(pending, now));
        inflight.deadline = overdue::request_deadline(inflight.pending.kind, now, &self.settings);
        let duplicate = match &mut job {
            Job::CheckinStart(input) => {
                self.starting.insert(input.agent_id.clone(), conn);
                inflight.holds = Some(Holds::Starting(input.agent_id.clone()));
                false
            }
            Job::Enroll(input) => match &input.enrollment_id {
                Some(id) if self.enrolling.contains_key(id) => true,
                Some(id) => {
                    self.enrolling.insert(id.clone(), conn);
                    inflight.holds = Some(Holds::Enrolling(id.clone()));
                    false
                }
                None => false,
            },
            Job::OpAmp(input) => {
                input.remote_configs = self.cache.opamp_configs();
                false
            }
            _ => false,
        };
        self.inflight.insert(conn, inflight);
        if duplicate {
            return self.respond(conn, errors::respond(&ApiError::EnrollDuplicate));
        }
        self.submit(conn, job);
    }

    /// Submits a job for `conn`'s request, due by the request's deadline (management requests
    /// and WebSocket messages: the backend timeout from their start); arms its overdue answer.
    fn submit(&mut self, conn: ConnKey, job: Job) {
        let Some(deadline) = self.arm_overdue(conn) else {
            return;
        };
        self.outputs.push_back(Output::Submit {
            to: ReplyTo::Conn(conn),
            job,
            deadline,
        });
    }

    /// Queues an answer for a connection; a 503 gets a jittered `Retry-After`.
    fn emit(&mut self, mut output: Output) {
        if let Some(conn) = answer_for(&output) {
            self.answering.insert(conn);
        }
        match &output {
            Output::Respond { conn, response, .. } => {
                self.timing
                    .answered(*conn, response.status, response.body.as_bytes());
            }
            Output::Upgrade { conn, .. } => self.timing.answered(*conn, 101, &[]),
            _ => {}
        }
        if let Output::Respond { response, .. } = &mut output {
            if response.status == 503 {
                let unit = self.ids.next_unit();
                errors::jitter_retry_after(response, unit);
            }
        }
        self.outputs.push_back(output);
    }

    /// Removes `conn`'s in-flight request and everything that refers to it, returning it.
    fn take_inflight(&mut self, conn: ConnKey) -> Option<Inflight> {
        let mut inflight = *self.inflight.remove(&conn)?;
        if let Some(waiter) = inflight.checkin.as_ref().and_then(|c| c.waiter.as_ref()) {
            self.waiters.remove(conn, waiter);
        }
        if let Some(open) = inflight.open.take() {
            self.timing.resume(conn, open);
        }
        match &inflight.holds {
            Some(Holds::Starting(agent)) if self.starting.get(agent) == Some(&conn) => {
                self.starting.remove(agent);
                self.early.remove(agent);
            }
            Some(Holds::Enrolling(id)) if self.enrolling.get(id) == Some(&conn) => {
                self.enrolling.remove(id);
            }
            _ => {}
        }
        if let Some(limited) = inflight.pending.limited {
            self.limits.get(limited).release();
        }
        if inflight.overdue.is_some() {
            let inflight_map = &self.inflight;
            self.overdue.note_stale(|key, ticket| {
                inflight_map.get(&key).and_then(|i| i.overdue) == Some(ticket)
            });
        }
        if inflight
            .checkin
            .as_ref()
            .is_some_and(|c| c.parked.is_some())
        {
            let inflight_map = &self.inflight;
            self.long_polls.note_stale(|key, ticket| {
                inflight_map
                    .get(&key)
                    .and_then(|i| i.checkin.as_ref())
                    .and_then(|c| c.parked)
                    == Some(ticket)
            });
        }
        Some(inflight)
    }

    /// Answers `conn`'s in-flight request with `response`, adding the headers every routed
    /// response carries.
    fn respond(&mut self, conn: ConnKey, response: Response) {
        if let Some(inflight) = self.take_inflight(conn) {
            log::debug!("{:?} answered {}", inflight.pending.kind, response.status);
            let response = inflight.pending.decorate(response);
            self.emit(Output::Respond {
                conn,
                response,
                close: false,
            });
        }
    }

    /// Answers `conn` with a response already decorated by [`Pending::finish`].
    fn finish(&mut self, conn: ConnKey, response: Response) {
        if let Some(inflight) = self.take_inflight(conn) {
            log::debug!("{:?} answered {}", inflight.pending.kind, response.status);
            self.emit(Output::Respond {
                conn,
                response,
                close: false,
            });
        }
    }

    /// Arms a [`Timer`] at `at` unless it is armed earlier already.
    fn arm(&mut self, timer: Timer, at: Instant) {
        let slot = &mut self.timers[timer as usize];
        *slot = Some(slot.map_or(at, |current| current.min(at)));
    }
}

/// The waiter of `key`'s parked checkin.
fn parked_waiter(inflight: &HashMap<ConnKey, Box<Inflight>>, key: ConnKey) -> Option<&Waiter> {
    inflight.get(&key)?.checkin.as_ref()?.waiter.as_ref()
}

/// The connection an output answers (`None`: a job).
fn answer_for(output: &Output) -> Option<ConnKey> {
    match output {
        Output::Respond { conn, .. }
        | Output::Message { conn, .. }
        | Output::Upgrade { conn, .. } => Some(*conn),
        Output::Submit { .. } | Output::Part { .. } => None,
    }
}

#[cfg(test)]
mod sizes {
    /// The fixed parts the engine keeps per parked checkin, printed for the README's per-agent
    /// budget (`--nocapture`): its in-flight record (boxed, behind a slot), which holds its
    /// waiter and its timing record.
    #[test]
    fn per_parked_checkin_records_stay_small() {
        let slot = std::mem::size_of::<(super::ConnKey, Box<super::Inflight>)>();
        let record = std::mem::size_of::<super::Inflight>();
        let waiter = std::mem::size_of::<crate::core::longpoll::Waiter>();
        let open = std::mem::size_of::<super::timing::Open>();
        println!("inflight slot {slot} bytes + record {record} (waiter {waiter}, timing {open})");
        assert!(slot <= 24 && record <= 344, "{slot} {record}");
        assert!(waiter <= 80 && open <= 56, "{waiter} {open}");
    }
}
