//! The scenario harness (DESIGN.md §6: where a new behaviour gets its first test): one
//! [`Fleet`] driven with a virtual clock and a scripted backend, no sockets and no threads. The
//! test plays the agents (requests on numbered connections), the backend (it takes the jobs the
//! engine submits and answers them in any order, or refuses them) and the store (events);
//! [`Scenario::advance`] moves the clock from deadline to deadline, as the event loop would.
//!
//! After every step the harness checks the engine's invariants ([`Scenario::check`]): every
//! request is answered at most once and only while its connection is open; no waiter, in-flight
//! request, starting checkin or enrollment refers to a closed connection; a parked checkin is
//! exactly one with a waiter; at most one checkin batch is written at a time; an agent request
//! waiting for a job has its overdue answer armed; no deadline is left in the past. An answer
//! that closes its connection (an overdue 503) closes it in the harness too, as the event loop
//! does once the answer is written. The fuzz target `core_ops` replays arbitrary operation sequences through
//! the same harness.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::{ConnKey, Fleet, FleetSettings, Origin, Output, ReplyTo};
use crate::api::health::Health;
use crate::backend::interface::{CheckinBody, CheckinStart};
use crate::backend::interface::{Event, Job, JobOutput, Reply};
use crate::backend::CheckinWrite;
use crate::core::longpoll::PollSettings;
use crate::http::{Method, Request, Response};
use crate::model::{Action, Agent, OutputKey, PolicyDoc};
use crate::opamp::proto::ServerToAgent;
use crate::transform::prepared_policy::{PolicyError, PreparedPolicy};

/// What a connection received.
#[derive(Debug)]
pub enum Answer {
    /// An HTTP response.
    Response(Response),
    /// A WebSocket message (`None`: the message was dropped).
    Message(Option<ServerToAgent>),
    /// The switch to WebSocket framing.
    Upgrade,
}

impl Answer {
    /// The HTTP status (`101` for an upgrade, `0` for a WebSocket message).
    pub fn status(&self) -> u16 {
        match self {
            Answer::Response(r) => r.status,
            Answer::Upgrade => 101,
            Answer::Message(_) => 0,
        }
    }

    /// The response body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        match self {
            Answer::Response(r) => serde_json::from_slice(r.body_bytes()).unwrap_or(Value::Null),
            _ => Value::Null,
        }
    }
}

/// A broken invariant: what happened, in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invariant broken: {0}")]
pub struct Violation(pub String);

/// A connection as the harness sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnState {
    /// Open; `true` while a request waits for its answer.
    Open(bool),
    Closed,
}

/// One engine, a virtual clock, a scripted backend.
pub struct Scenario {
    /// The engine under test.
    pub fleet: Fleet,
    now: Instant,
    wall: SystemTime,
    conns: HashMap<ConnKey, ConnState>,
    next_slot: usize,
    jobs: VecDeque<(ReplyTo, Job)>,
    /// The deadline of the latest job submitted for each destination.
    job_deadlines: HashMap<ReplyTo, Instant>,
    /// Checkin batches submitted and neither answered nor refused.
    batches: usize,
    answers: HashMap<ConnKey, VecDeque<Answer>>,
    refusing: bool,
    violations: Vec<Violation>,
}

impl Default for Scenario {
    fn default() -> Self {
        Self::new(Scenario::settings())
    }
}

impl Scenario {
    /// The settings scenarios start from: a 300 s long poll without jitter, the spec's flush
    /// and refresh intervals, a store attached, a management token `admin-token`.
    pub fn settings() -> FleetSettings {
        FleetSettings {
            poll: PollSettings {
                long_poll: Duration::from_secs(300),
                jitter: Duration::ZERO,
                max_poll: Duration::from_secs(3600),
            },
            checkin_flush: Duration::from_secs(10),
            checkin_timestamp: Duration::from_secs(30),
            pbkdf2_iterations: 1000,
            server_version: crate::server_version::BUILT_IN,
            limits_table: None,
            has_store: true,
            admin_token: Some(crate::mgmt::token::Credentials::admin("admin-token")),
            seed: 7,
            backend_timeout: Duration::from_secs(10),
            files: crate::api::serving::FileServing::default(),
        }
    }

    /// An engine with `settings`, its clock at an arbitrary start.
    #[allow(
        clippy::disallowed_methods,
        reason = "the virtual clock's origin (`Instant` has no other constructor); it then moves only by `advance`"
    )]
    pub fn new(settings: FleetSettings) -> Self {
        let now = Instant::now();
        Self {
            fleet: Fleet::new(settings, Health::Healthy, now),
            now,
            wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_720_000),
            conns: HashMap::new(),
            next_slot: 0,
            jobs: VecDeque::new(),
            job_deadlines: HashMap::new(),
            batches: 0,
            answers: HashMap::new(),
            refusing: false,
            violations: Vec::new(),
        }
    }

    /// The virtual monotonic clock.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The virtual wall clock.
    pub fn wall(&self) -> SystemTime {
        self.wall
    }

    /// A new connection.
    pub fn connect(&mut self) -> ConnKey {
        let key = ConnKey::new(self.next_slot, self.next_slot as u64);
        self.next_slot += 1;
        self.conns.insert(key, ConnState::Open(false));
        key
    }

    /// Whether `conn` is open with a request waiting for its answer.
    pub fn awaiting(&self, conn: ConnKey) -> bool {
        self.conns.get(&conn) == Some(&ConnState::Open(true))
    }

    /// Whether `conn` was closed (by the scenario, or after an answer that closes it).
    pub fn closed(&self, conn: ConnKey) -> bool {
        self.conns.get(&conn) == Some(&ConnState::Closed)
    }

    /// Whether `conn` is open and has no request in the engine (it may send one).
    pub fn idle(&self, conn: ConnKey) -> bool {
        self.conns.get(&conn) == Some(&ConnState::Open(false))
    }

    /// Sends `req` on `conn` (which must be idle: the event loop reads one request at a time).
    pub fn request(&mut self, conn: ConnKey, origin: Origin, req: &Request) {
        self.request_since(conn, origin, req, self.now);
    }

    /// Sends `req` on `conn`, which the server has known since `arrived` (the accept of a
    /// new connection whose TLS handshake took until now).
    pub fn request_since(
        &mut self,
        conn: ConnKey,
        origin: Origin,
        req: &Request,
        arrived: Instant,
    ) {
        if !self.idle(conn) {
            self.violations.push(Violation(format!(
                "the scenario sent a request on {conn:?}, which is not idle"
            )));
            return;
        }
        self.conns.insert(conn, ConnState::Open(true));
        self.fleet
            .handle_request(conn, origin, req, (arrived, self.now), self.wall);
        self.pump();
    }

    /// A checkin of `agent_id` on `conn` (`body`: its JSON body).
    pub fn checkin(&mut self, conn: ConnKey, agent_id: &str, body: Value) {
        let path = format!("/api/fleet/agents/{agent_id}/checkin");
        self.request(conn, Origin::Agent, &agent_request(&path, &body));
    }

    /// An enroll on `conn`, with an enrollment id when given.
    pub fn enroll(&mut self, conn: ConnKey, enrollment_id: Option<&str>) {
        let mut body = json!({"type": "PERMANENT", "metadata": {"local": {}, "user_provided": {}}});
        if let Some(id) = enrollment_id {
            body["enrollment_id"] = Value::from(id);
        }
        self.request(
            conn,
            Origin::Agent,
            &agent_request("/api/fleet/agents/enroll", &body),
        );
    }

    /// A management request on `conn` with the right bearer token.
    pub fn admin(&mut self, conn: ConnKey, method: Method, path: &str) {
        let mut req = agent_request(path, &Value::Null);
        req.method = method;
        req.body.clear();
        req.headers = vec![("authorization".into(), b"Bearer admin-token".to_vec())];
        self.request(conn, Origin::Management, &req);
    }

    /// A WebSocket message on an upgraded `conn`.
    pub fn message(&mut self, conn: ConnKey, body: Vec<u8>) {
        if !self.idle(conn) {
            self.violations.push(Violation(format!(
                "the scenario sent a message on {conn:?}, which is not idle"
            )));
            return;
        }
        self.conns.insert(conn, ConnState::Open(true));
        let token = crate::backend::ApiKey {
            id: "token".into(),
            secret: "secret".into(),
        };
        self.fleet.handle_message(conn, token, body, self.now);
        self.pump();
    }

    /// The peer (or an I/O timeout) closed `conn`.
    pub fn close(&mut self, conn: ConnKey) {
        if self
            .conns
            .get(&conn)
            .is_some_and(|s| *s != ConnState::Closed)
        {
            self.conns.insert(conn, ConnState::Closed);
            self.fleet.handle_close(conn);
            self.pump();
        }
    }

    /// A store event.
    pub fn event(&mut self, event: Event) {
        self.fleet.handle_event(event, self.now);
        self.pump();
    }

    /// The backend answers a job.
    pub fn reply(&mut self, to: ReplyTo, output: JobOutput) {
        if to == ReplyTo::Writer {
            self.batches = self.batches.saturating_sub(1);
        }
        self.fleet
            .handle_reply(Reply { to, output }, self.now, self.wall);
        self.pump();
    }

    /// Shutdown begins.
    pub fn drain(&mut self) {
        self.fleet.handle_drain(self.now, self.wall);
        self.pump();
    }

    /// From now on the backend refuses (`true`) or queues (`false`) every job.
    pub fn refuse_jobs(&mut self, refuse: bool) {
        self.refusing = refuse;
    }

    /// Moves both clocks forward by `by`, firing every deadline on the way at its instant.
    pub fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        while let Some(at) = self.fleet.poll_timeout().filter(|at| *at <= target) {
            self.set_time(at.max(self.now));
            self.fleet.handle_timeout(self.now, self.wall);
            self.pump();
            if self
                .fleet
                .poll_timeout()
                .is_some_and(|next| next <= self.now)
            {
                self.violations.push(Violation(
                    "a deadline is still due after handle_timeout".into(),
                ));
                break;
            }
        }
        self.set_time(target);
    }

    fn set_time(&mut self, at: Instant) {
        self.wall += at.saturating_duration_since(self.now);
        self.now = at;
    }

    /// The jobs submitted and not answered yet, oldest first.
    pub fn jobs(&self) -> &VecDeque<(ReplyTo, Job)> {
        &self.jobs
    }

    /// The deadline the latest job for `to` was submitted with.
    pub fn job_deadline(&self, to: ReplyTo) -> Option<Instant> {
        self.job_deadlines.get(&to).copied()
    }

    /// Takes the oldest job `pick` accepts.
    pub fn take_job(
        &mut self,
        mut pick: impl FnMut(&ReplyTo, &Job) -> bool,
    ) -> Option<(ReplyTo, Job)> {
        let index = self.jobs.iter().position(|(to, job)| pick(to, job))?;
        self.jobs.remove(index)
    }

    /// Takes the oldest job for `conn`.
    pub fn take_job_of(&mut self, conn: ConnKey) -> Option<Job> {
        self.take_job(|to, _| *to == ReplyTo::Conn(conn))
            .map(|(_, job)| job)
    }

    /// Takes the oldest answer `conn` received.
    pub fn take_answer(&mut self, conn: ConnKey) -> Option<Answer> {
        self.answers.get_mut(&conn)?.pop_front()
    }

    /// The first broken invariant, if any (checked after every step).
    pub fn check(&self) -> Result<(), Violation> {
        if let Some(v) = self.violations.first() {
            return Err(v.clone());
        }
        let open_awaiting = |k: &ConnKey| self.conns.get(k) == Some(&ConnState::Open(true));
        let fleet = &self.fleet;
        for key in fleet.waiters.keys() {
            if !open_awaiting(&key) {
                return Err(Violation(format!("a waiter is left for {key:?}")));
            }
            let parked = fleet
                .inflight
                .get(&key)
                .and_then(|i| i.checkin.as_ref())
                .is_some_and(|c| c.parked.is_some());
            if !parked {
                return Err(Violation(format!("{key:?} has a waiter but is not parked")));
            }
        }
        for (key, inflight) in &fleet.inflight {
            if !open_awaiting(key) {
                return Err(Violation(format!("a request is in flight for {key:?}")));
            }
            let parked = inflight
                .checkin
                .as_ref()
                .is_some_and(|c| c.parked.is_some());
            let waiter = inflight.checkin.as_ref().and_then(|c| c.waiter.as_ref());
            if parked != waiter.is_some() || parked != fleet.waiters.contains(*key) {
                return Err(Violation(format!(
                    "{key:?}: parked, its waiter and its index entry disagree"
                )));
            }
            if !parked && inflight.deadline.is_some() && inflight.overdue.is_none() {
                return Err(Violation(format!(
                    "{key:?} waits for a job with no overdue answer armed"
                )));
            }
        }
        for (what, map) in [
            ("starting", &fleet.starting),
            ("enrolling", &fleet.enrolling),
        ] {
            if let Some((id, key)) = map.iter().find(|(_, k)| !fleet.inflight.contains_key(k)) {
                return Err(Violation(format!("{what} {id} refers to {key:?}")));
            }
        }
        if let Some(agent) = fleet
            .early
            .keys()
            .find(|a| !fleet.starting.contains_key(*a))
        {
            return Err(Violation(format!(
                "early actions kept for {agent}, not starting"
            )));
        }
        let batches = self.batches;
        if batches != usize::from(fleet.writer.inflight) || batches > 1 {
            return Err(Violation(format!(
                "{batches} checkin batch(es) in flight, the writer says {}",
                fleet.writer.inflight
            )));
        }
        // Time only moves in `advance`, which fires every deadline on the way: whatever is
        // armed is in the future.
        if let Some(at) = fleet.poll_timeout().filter(|at| *at <= self.now) {
            return Err(Violation(format!(
                "a deadline {:?} in the past is left",
                self.now - at
            )));
        }
        Ok(())
    }

    /// Carries out the engine's outputs: answers recorded (checked), jobs queued or refused.
    fn pump(&mut self) {
        let mut closing = Vec::new();
        while let Some(output) = self.fleet.poll_output() {
            let (conn, answer) = match output {
                Output::Submit { to, job, deadline } => {
                    self.job_deadlines.insert(to, deadline);
                    if to == ReplyTo::Writer {
                        self.batches += 1;
                    }
                    if self.refusing {
                        if to == ReplyTo::Writer {
                            self.batches -= 1;
                        }
                        self.fleet.handle_refused(to, job);
                    } else {
                        self.jobs.push_back((to, job));
                    }
                    continue;
                }
                Output::Respond {
                    conn,
                    response,
                    close,
                } => {
                    if close {
                        closing.push(conn);
                    }
                    (conn, Answer::Response(response))
                }
                Output::Message { conn, reply } => (conn, Answer::Message(reply)),
                Output::Upgrade { conn, .. } => (conn, Answer::Upgrade),
                // A streamed body's part goes to the connection, not to the engine's checks.
                Output::Part { .. } => continue,
            };
            match self.conns.get(&conn) {
                Some(ConnState::Open(true)) => {
                    self.conns.insert(conn, ConnState::Open(false));
                }
                Some(ConnState::Closed) => self
                    .violations
                    .push(Violation(format!("an answer to closed {conn:?}"))),
                _ => self.violations.push(Violation(format!(
                    "a second answer (or one never asked for) to {conn:?}"
                ))),
            }
            self.answers.entry(conn).or_default().push_back(answer);
        }
        for conn in closing {
            self.close(conn);
        }
    }
}

/// An agent's POST with an access key and an admitted User-Agent.
pub fn agent_request(path: &str, body: &Value) -> Request {
    let token = base64::engine::general_purpose::STANDARD.encode("key-id:key-secret");
    Request {
        peer: None,
        method: Method::Post,
        path: path.to_owned(),
        query: None,
        minor_version: 1,
        headers: vec![
            (
                "authorization".into(),
                format!("ApiKey {token}").into_bytes(),
            ),
            ("user-agent".into(), b"Elastic Agent v9.2.1".to_vec()),
            ("content-type".into(), b"application/json".to_vec()),
        ],
        body: serde_json::to_vec(body).unwrap_or_default(),
        keep_alive: true,
        tls: true,
    }
}

/// An agent document assigned to `policy_id`, at `revision`.
pub fn agent(id: &str, policy_id: &str, revision: i64) -> Agent {
    Agent {
        id: id.into(),
        policy_id: policy_id.into(),
        policy_revision_idx: revision,
        ..Agent::default()
    }
}

/// What the store part of a checkin of `agent` returns when nothing is pending.
pub fn started(agent: Agent) -> CheckinStart {
    CheckinStart {
        agent,
        body: CheckinBody::default(),
        poll_timeout: None,
        actions: Vec::new(),
        ack_token: String::new(),
        state: CheckinWrite::fields(Map::from_iter([(
            "last_checkin_status".to_owned(),
            Value::from("online"),
        )])),
        repeat: Map::new(),
        position: -1,
    }
}

/// A revision whose Elasticsearch output keeps the credentials the policy gives (no output key
/// to make: it is delivered straight from the cache).
pub fn policy(id: &str, revision: i64) -> Result<Arc<PreparedPolicy>, PolicyError> {
    prepared(id, revision, false)
}

/// A revision whose Elasticsearch output needs a key minted for each agent (`OutputKeys`).
pub fn policy_with_output_keys(
    id: &str,
    revision: i64,
) -> Result<Arc<PreparedPolicy>, PolicyError> {
    prepared(id, revision, true)
}

fn prepared(id: &str, revision: i64, mint_keys: bool) -> Result<Arc<PreparedPolicy>, PolicyError> {
    let doc = PolicyDoc {
        policy_id: id.into(),
        revision_idx: revision,
        data: json!({
            "outputs": {"default": {"type": "elasticsearch", "hosts": ["http://es:9200"]}},
            "output_permissions": {"default": {"r": {"indices": []}}},
        }),
        ..PolicyDoc::default()
    };
    PreparedPolicy::prepare_with(&doc, &HashMap::new(), mint_keys).map(Arc::new)
}

/// `agent` with a current key for every output of `policy` (no `OutputKeys` job needed).
pub fn with_current_keys(mut agent: Agent, policy: &PreparedPolicy) -> Agent {
    for output in &policy.es_outputs {
        agent.outputs.insert(
            output.name.clone(),
            OutputKey {
                api_key: "id:secret".into(),
                permissions_hash: output.hash.clone(),
                remote_config_hash: output.remote_config_hash().into(),
                ..OutputKey::default()
            },
        );
    }
    agent
}

/// A delivered-type action document for `agents` at `seq_no`.
pub fn action(id: &str, seq_no: i64, agents: &[&str]) -> Action {
    Action {
        doc_id: format!("doc-{id}"),
        seq_no,
        action_id: id.into(),
        action_type: "SETTINGS".into(),
        agents: agents.iter().map(|a| (*a).to_owned()).collect(),
        data: json!({"log_level": "debug"}),
        ..Action::default()
    }
}
