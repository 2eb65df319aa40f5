//! Arbitrary operation sequences replayed against the engine through the scenario harness, with
//! the harness's invariants checked after every step (the fuzz target `core_ops` and a unit test
//! feed it bytes). Requests from several connections, backend replies in any order (successes and
//! failures of every job kind), refused jobs, closes, time passing, new revisions, live actions,
//! store outages and the drain. At the end the backend answers everything and the drain runs:
//! then every request must have had its answer (nothing is lost, nothing left parked).
//!
//! Each operation reads its opcode and operands from the input, one byte each; a short input
//! ends the sequence.

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::testing::{
    agent, agent_request, policy, policy_with_output_keys, started, Scenario, Violation,
};
use super::{ConnKey, Origin};
use crate::backend::interface::AckOutcome;
use crate::backend::interface::{Event, Job, JobOutput};
use crate::backend::ops::opamp::{OpAmpOutcome, OpAmpRefusal};
use crate::backend::OpError;
use crate::http::{Method, Request};

/// Connections the operations spread over (a closed one is replaced by a new one).
const CONNECTIONS: usize = 6;
/// Agents the checkins and actions name.
const AGENTS: [&str; 4] = ["a0", "a1", "a2", "a3"];

/// Replays the operations `input` encodes; the first broken invariant ends it.
pub fn replay(input: &[u8]) -> Result<(), Violation> {
    let mut run = Run {
        s: Scenario::default(),
        conns: Vec::new(),
        bytes: input.iter(),
    };
    run.conns = (0..CONNECTIONS).map(|_| run.s.connect()).collect();
    while let Some(op) = run.next() {
        run.step(op);
        run.s.check()?;
    }
    run.finish()
}

struct Run<'a> {
    s: Scenario,
    conns: Vec<ConnKey>,
    bytes: std::slice::Iter<'a, u8>,
}

impl Run<'_> {
    fn next(&mut self) -> Option<u8> {
        self.bytes.next().copied()
    }

    /// The connection an operand names.
    fn conn(&mut self) -> Option<(usize, ConnKey)> {
        let i = usize::from(self.next()?) % CONNECTIONS;
        Some((i, self.conns[i]))
    }

    fn agent(&mut self) -> Option<&'static str> {
        Some(AGENTS[usize::from(self.next()?) % AGENTS.len()])
    }

    /// Sends `req` on the named connection if it may send one now.
    fn send(&mut self, origin: Origin, req: &Request) -> Option<()> {
        let (_, conn) = self.conn()?;
        if self.s.idle(conn) {
            self.s.request(conn, origin, req);
        }
        Some(())
    }

    fn step(&mut self, op: u8) -> Option<()> {
        match op % 17 {
            0 => {
                let agent = self.agent()?;
                let path = format!("/api/fleet/agents/{agent}/checkin");
                self.send(
                    Origin::Agent,
                    &agent_request(&path, &json!({"status": "online"})),
                )
            }
            1 => {
                let id = self.next()? % 3;
                let mut body = json!({"type": "PERMANENT"});
                if id > 0 {
                    body["enrollment_id"] = Value::from(format!("enr-{id}"));
                }
                self.send(
                    Origin::Agent,
                    &agent_request("/api/fleet/agents/enroll", &body),
                )
            }
            2 => {
                let agent = self.agent()?;
                let path = format!("/api/fleet/agents/{agent}/acks");
                self.send(Origin::Agent, &agent_request(&path, &json!({"events": []})))
            }
            3 => {
                let mut req = agent_request("/api/status", &Value::Null);
                req.method = Method::Get;
                self.send(Origin::Agent, &req)
            }
            4 => {
                let which = self.next()?;
                let path = if which % 2 == 0 {
                    "/api/fleet/agents".to_owned()
                } else {
                    format!("/api/fleet/agents/{}", AGENTS[usize::from(which / 2) % 4])
                };
                let mut req = agent_request(&path, &Value::Null);
                req.method = Method::Get;
                req.body.clear();
                req.headers = vec![("authorization".into(), b"Bearer admin-token".to_vec())];
                self.send(Origin::Management, &req)
            }
            5 => {
                let mut req = agent_request("/v1/opamp", &Value::Null);
                req.headers.retain(|(name, _)| name != "content-type");
                req.headers
                    .push(("content-type".into(), b"application/x-protobuf".to_vec()));
                req.body = Vec::new();
                self.send(Origin::Agent, &req)
            }
            6 => {
                let mut req = agent_request("/v1/opamp", &Value::Null);
                req.method = Method::Get;
                req.body.clear();
                req.headers.retain(|(name, _)| name != "content-type");
                for (name, value) in [
                    ("connection", "Upgrade"),
                    ("upgrade", "websocket"),
                    ("sec-websocket-version", "13"),
                    ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ] {
                    req.headers.push((name.into(), value.as_bytes().to_vec()));
                }
                self.send(Origin::Agent, &req)
            }
            7 => {
                let (_, conn) = self.conn()?;
                if self.s.idle(conn) {
                    self.s.message(conn, vec![0]);
                }
                Some(())
            }
            8 => self.reply(),
            9 => {
                let (i, conn) = self.conn()?;
                self.s.close(conn);
                self.conns[i] = self.s.connect();
                Some(())
            }
            10 => {
                let amount = self.next()?;
                let by = match amount % 4 {
                    0 => Duration::from_millis(u64::from(amount)),
                    1 => Duration::from_secs(u64::from(amount % 16)),
                    2 => Duration::from_secs(10 * u64::from(amount % 8)),
                    _ => Duration::from_secs(300),
                };
                self.s.advance(by);
                Some(())
            }
            11 => {
                let b = self.next()?;
                let id = if b & 1 == 0 { "p" } else { "q" };
                let revision = i64::from((b >> 1) % 8);
                let prepared = if b & 0x10 == 0 {
                    policy(id, revision)
                } else {
                    policy_with_output_keys(id, revision)
                };
                if let Ok(prepared) = prepared {
                    self.s.event(Event::Policy(prepared));
                }
                Some(())
            }
            12 => {
                let mask = self.next()?;
                let seq = i64::from(self.next()?);
                let agents: Vec<&str> = AGENTS
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, a)| *a)
                    .collect();
                let action = super::testing::action(&format!("x{seq}"), seq, &agents);
                self.s.event(Event::Actions(vec![action]));
                Some(())
            }
            13 => {
                let up = self.next()? % 2 == 0;
                self.s.event(Event::StoreReachable(up));
                Some(())
            }
            14 => {
                let refuse = self.next()? % 4 == 0;
                self.s.refuse_jobs(refuse);
                Some(())
            }
            15 => {
                self.s.drain();
                Some(())
            }
            _ => {
                let origin = if self.next()? % 2 == 0 {
                    Origin::OverCapacity
                } else {
                    Origin::Reserve
                };
                let mut req = agent_request("/api/status", &Value::Null);
                req.method = Method::Get;
                self.send(origin, &req)
            }
        }
    }

    /// The backend answers one of the jobs waiting (any of them: replies come in any order).
    fn reply(&mut self) -> Option<()> {
        let pick = usize::from(self.next()?);
        let variant = self.next()?;
        let waiting = self.s.jobs().len();
        if waiting == 0 {
            return Some(());
        }
        let index = pick % waiting;
        let mut seen = 0;
        let (to, job) = self.s.take_job(|_, _| {
            seen += 1;
            seen == index + 1
        })?;
        self.s.reply(to, output(job, variant));
        Some(())
    }

    /// The backend answers everything, the drain runs, and every request must be answered.
    fn finish(mut self) -> Result<(), Violation> {
        self.s.refuse_jobs(false);
        self.s.drain();
        self.s.check()?;
        for _ in 0..64 {
            while let Some((to, job)) = self.s.take_job(|_, _| true) {
                self.s.reply(to, output(job, 1));
                self.s.check()?;
            }
            self.s.advance(Duration::from_secs(3600));
            self.s.check()?;
            if self.s.jobs().is_empty() {
                break;
            }
        }
        if let Some(conn) = self.conns.iter().find(|c| self.s.awaiting(**c)) {
            return Err(Violation(format!(
                "{conn:?} never got its answer (jobs left: {})",
                self.s.jobs().len()
            )));
        }
        if !self.s.fleet.writer_idle() {
            return Err(Violation("checkin state left unwritten".into()));
        }
        Ok(())
    }
}

/// A backend result for `job`: a success or a failure of its kind, as `variant` picks.
fn output(job: Job, variant: u8) -> JobOutput {
    let fail = variant.is_multiple_of(8);
    match job {
        Job::CheckinStart(input) => {
            if fail {
                return JobOutput::CheckinStarted(Box::new(Err(OpError::AgentNotFound)));
            }
            let policy = if variant & 0x40 == 0 { "p" } else { "q" };
            let mut start = started(agent(&input.agent_id, policy, i64::from(variant % 4)));
            if variant & 0x08 != 0 {
                start.actions = vec![json!({"id": "pending"})];
                start.ack_token = "doc-pending".into();
            }
            start.position = i64::from(variant >> 4) * 16 - 1;
            if variant & 0x80 != 0 {
                start.poll_timeout = Some(Duration::from_secs(u64::from(variant)));
            }
            JobOutput::CheckinStarted(Box::new(Ok(start)))
        }
        Job::OutputKeys { .. } => JobOutput::OutputKeys(if fail {
            Err(OpError::Unavailable)
        } else {
            Ok([("default".to_owned(), "id:secret".to_owned())].into())
        }),
        Job::Enroll(_) => JobOutput::Enrolled(if fail {
            Err(OpError::Unavailable)
        } else {
            Ok(json!({"action": "created"}))
        }),
        Job::Ack(_) => JobOutput::Acked(Ok(AckOutcome {
            status: 200,
            body: json!({"action": "acks", "items": []}),
            unenrolled: fail,
        })),
        Job::Authenticate(_) => JobOutput::Authenticated(!fail),
        Job::WriteCheckins(batch) => JobOutput::CheckinsWritten {
            retry: if fail { batch } else { Vec::new() },
            error: None,
        },
        Job::Admin(_) => JobOutput::Admin(200, json!({"list": []})),
        Job::OpAmp(_) => JobOutput::OpAmp(if fail {
            Err(OpAmpRefusal::BadMessage("not an AgentToServer".into()))
        } else {
            Ok(OpAmpOutcome {
                reply: Default::default(),
                checkin: Some((
                    AGENTS[usize::from(variant) % 4].to_owned(),
                    Map::from_iter([("last_checkin_status".to_owned(), json!("online"))]),
                )),
            })
        }),
        Job::OpAmpConnect { key, accept } => JobOutput::OpAmpConnected(if fail {
            Err(OpAmpRefusal::Unauthorized)
        } else {
            Ok((accept, key))
        }),
        // Audit, and jobs of endpoints this replay does not send: a plain success.
        _ => JobOutput::Audited(Ok(())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A few thousand pseudo-random sequences (the fuzz target runs millions).
    #[test]
    fn random_operation_sequences_keep_every_invariant() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for round in 0..400 {
            let input: Vec<u8> = (0..300)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state >> 24) as u8
                })
                .collect();
            if let Err(v) = replay(&input) {
                panic!("round {round}: {v}\ninput: {input:?}");
            }
        }
    }

    #[test]
    fn the_fuzz_seeds_replay_cleanly() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/core_ops");
        let mut replayed = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let input = std::fs::read(&path).unwrap();
            replay(&input).unwrap_or_else(|v| panic!("{}: {v}", path.display()));
            replayed += 1;
        }
        assert!(replayed >= 4, "seeds in {}", dir.display());
    }

    #[test]
    fn a_lost_request_is_caught() {
        // The check is not vacuous: a connection left waiting fails the replay's final check.
        let mut s = Scenario::default();
        let conn = s.connect();
        s.checkin(conn, "a0", json!({}));
        s.take_job_of(conn);
        let run = Run {
            s,
            conns: vec![conn],
            bytes: [].iter(),
        };
        assert!(run.finish().is_err());
    }
}
