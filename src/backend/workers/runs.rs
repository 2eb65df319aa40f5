//! Runs of jobs: the acks and enrolls a backend worker finds queued together run as one batch
//! whose store writes share commits (`backend::deferred`); the embedded store has one worker,
//! and a commit is two fsyncs, so one commit per ack or enroll capped a rollout or an enroll
//! storm at the disk's fsync rate.

use std::collections::VecDeque;
use std::time::{Instant, SystemTime};

use super::queue::JobsRx;
use super::{ack, enroll, Job, JobOutput, RemoteClusters, Reply, Store, Work};
use crate::backend::admission::{expired, Admission, Kind};
use crate::backend::interface::{AckInput, EnrollInput};

/// A job that may run in a batch: its writes can share commits.
#[derive(Debug)]
pub(super) enum Batched {
    Ack(AckInput),
    Enroll(EnrollInput),
}

/// A job sorted by whether it may run in a batch.
enum Sorted {
    Batched(Batched),
    Alone(Job),
}

impl Batched {
    fn of(job: Job) -> Sorted {
        match job {
            Job::Ack(input) => Sorted::Batched(Batched::Ack(input)),
            Job::Enroll(input) => Sorted::Batched(Batched::Enroll(input)),
            other => Sorted::Alone(other),
        }
    }

    fn into_job(self) -> Job {
        match self {
            Batched::Ack(input) => Job::Ack(input),
            Batched::Enroll(input) => Job::Enroll(input),
        }
    }

    /// Not a second ack of the same agent, nor a second enroll with the same enrollment id,
    /// as a job already in `run`.
    fn fits<T>(&self, run: &[(T, Batched)]) -> bool {
        run.iter().all(|(_, other)| match (self, other) {
            (Batched::Ack(a), Batched::Ack(b)) => a.agent_id != b.agent_id,
            (Batched::Enroll(a), Batched::Enroll(b)) => {
                a.enrollment_id.is_none() || a.enrollment_id != b.enrollment_id
            }
            _ => true,
        })
    }

    fn run(&self, store: &dyn Store, remotes: &RemoteClusters, now: SystemTime) -> JobOutput {
        match self {
            Batched::Ack(input) => JobOutput::Acked(ack(store, remotes, input, now)),
            Batched::Enroll(input) => {
                #[cfg(debug_assertions)]
                crate::panics::failpoint("worker-panic-on-enroll");
                JobOutput::Enrolled(enroll(store, input, now))
            }
        }
    }
}

use crate::backend::admission::MAX_RUN;

/// An ack or enroll taken from the queue, with the acks and enrolls queued behind it (at most
/// [`MAX_RUN`] jobs taken in all): they run as one batch whose store writes share commits
/// ([`run_batch`]). Other work taken on the way (checkin starts, tasks, a second job of the same
/// agent) is `held`, in order, to run right after the batch.
pub(super) fn take_run<T>(
    first: Work<T>,
    rx: &JobsRx<Work<T>>,
    held: &mut VecDeque<Work<T>>,
) -> Work<T> {
    let Work::Job(to, job, deadline) = first else {
        return first;
    };
    let mut run = match Batched::of(job) {
        Sorted::Batched(batched) => vec![((to, deadline), batched)],
        Sorted::Alone(job) => return Work::Job(to, job, deadline),
    };
    let mut taken = 1;
    while taken < MAX_RUN {
        let Ok(work) = rx.try_recv() else {
            break;
        };
        taken += 1;
        match work {
            Work::Job(to, job, deadline) => match Batched::of(job) {
                Sorted::Batched(batched) if batched.fits(&run) => {
                    run.push(((to, deadline), batched));
                }
                Sorted::Batched(batched) => {
                    held.push_back(Work::Job(to, batched.into_job(), deadline));
                }
                Sorted::Alone(job) => held.push_back(Work::Job(to, job, deadline)),
            },
            other => held.push_back(other),
        }
    }
    if run.len() == 1 {
        let ((to, deadline), batched) = run.remove(0);
        return Work::Job(to, batched.into_job(), deadline);
    }
    Work::Run(run)
}

/// Runs a batch taken by [`take_run`] under admission (`backend::admission`): a job already
/// past its deadline is answered 503 without touching the store, the others run together
/// ([`run_batch`]) bounded by the earliest of their deadlines, and the batch's time is measured
/// as one batch of that many jobs (what admission estimates batches by).
pub(super) fn run_admitted<T>(
    store: &dyn Store,
    remotes: &RemoteClusters,
    admission: &Admission,
    batch: Vec<((T, Instant), Batched)>,
) -> Vec<Reply<T>> {
    let began = Instant::now();
    let mut replies = Vec::with_capacity(batch.len());
    let mut live = Vec::with_capacity(batch.len());
    for ((to, deadline), job) in batch {
        admission.started(Kind::Batched);
        match expired(job.into_job(), began >= deadline) {
            Ok(output) => {
                admission.finished(Kind::Batched, None);
                replies.push(Reply { to, output });
            }
            Err(job) => match Batched::of(*job) {
                Sorted::Batched(job) => live.push(((to, deadline), job)),
                // Only acks and enrolls are batched, and they stay so.
                Sorted::Alone(_) => admission.finished(Kind::Batched, None),
            },
        }
    }
    let Some(earliest) = live.iter().map(|((_, deadline), _)| *deadline).min() else {
        return replies;
    };
    let count = live.len();
    let _deadline = crate::backend::deadline::Scope::enter(earliest);
    let ran = run_batch(store, remotes, live, SystemTime::now());
    admission.finished_batch(count, began.elapsed());
    replies.extend(ran.into_iter().map(
        |Reply {
             to: (to, _),
             output,
         }| Reply { to, output },
    ));
    replies
}

/// Runs a batch of acks and enrolls with their store writes deferred ([`super::deferred`]):
/// every job runs, then every deferred write is waited for, so a batch costs about one commit
/// instead of one or two per job, and nothing is answered before its writes are durable. A job
/// whose deferred writes failed is run again on its own and answered with what that run says (a
/// policy ack rewrites the same fields; an enroll makes a new key and agent, and the first
/// attempt's key, if its commit went through, is left unused).
pub(super) fn run_batch<T>(
    store: &dyn Store,
    remotes: &RemoteClusters,
    batch: Vec<(T, Batched)>,
    now: SystemTime,
) -> Vec<Reply<T>> {
    let ran: Vec<_> = batch
        .into_iter()
        .map(|(to, job)| {
            let (output, deferred) =
                crate::backend::deferred::collect(|| job.run(store, remotes, now));
            (to, job, output, deferred)
        })
        .collect();
    ran.into_iter()
        .map(|(to, job, output, deferred)| {
            let output = match deferred.wait() {
                Ok(()) => output,
                Err(_) => job.run(store, remotes, now),
            };
            Reply { to, output }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::backend::local::LocalStore;
    use crate::backend::{ApiKey, NewApiKey};
    use crate::model::Agent;
    use crate::tls::test_support::TempDir;
    use serde_json::json;

    fn ack_of(key: &ApiKey, agent: &str, revision: i64) -> AckInput {
        AckInput {
            key: key.clone(),
            agent_id: agent.into(),
            body: crate::api::ack::parse(
                &serde_json::to_vec(&json!({"events": [{
                    "action_id": format!("policy:p:{revision}"), "agent_id": agent,
                    "type": "ACTION_RESULT", "subtype": "ACKNOWLEDGED"}]}))
                .unwrap(),
            ),
        }
    }

    /// a0's key id with a wrong secret.
    fn forged_key(store: &LocalStore) -> ApiKey {
        let agent = store.agent("a0").unwrap().unwrap();
        ApiKey {
            id: agent.access_api_key_id,
            secret: "not-the-secret".into(),
        }
    }

    #[test]
    fn a_run_of_acks_and_enrolls_shares_commits_and_answers_each() {
        let dir = TempDir::new("ack-run");
        let store = LocalStore::open(dir.path()).unwrap();
        let mut batch = Vec::new();
        for i in 0..20 {
            let id = format!("a{i}");
            let key = store
                .create_api_key(&NewApiKey {
                    name: id.clone(),
                    role_descriptors: json!({}),
                    metadata: json!({}),
                })
                .unwrap();
            store
                .create_agent(&Agent {
                    id: id.clone(),
                    active: true,
                    access_api_key_id: key.id.clone(),
                    agent: Some(crate::model::AgentInfo {
                        id: id.clone(),
                        version: "9.2.1".into(),
                        kind: String::new(),
                    }),
                    policy_id: "p".into(),
                    policy_revision_idx: 1,
                    ..Agent::default()
                })
                .unwrap();
            batch.push((i, Batched::Ack(ack_of(&key, &id, 3))));
        }
        // A wrong key is refused as on its own, and does not disturb the run.
        batch.push((99, Batched::Ack(ack_of(&forged_key(&store), "a0", 3))));
        // Enrolls share the run: each gets its key and agent, durable before the answer.
        store
            .add_policy(crate::model::PolicyDoc {
                policy_id: "p".into(),
                revision_idx: 1,
                data: json!({"id": "p", "revision": 1, "inputs": [],
                    "outputs": {"default": {"type": "elasticsearch", "hosts": ["https://es:9200"]}},
                    "output_permissions": {"default": {"x": {"cluster": ["monitor"]}}}}),
                ..crate::model::PolicyDoc::default()
            })
            .unwrap();
        let token = store.add_enrollment_key("p", "run").unwrap();
        for i in 0..5 {
            batch.push((
                100 + i,
                Batched::Enroll(EnrollInput {
                    key: token.clone(),
                    agent_version: Ok("9.2.1".into()),
                    body: crate::api::enroll::parse(
                        br#"{"type":"PERMANENT","metadata":{"local":{},"tags":[]}}"#,
                    ),
                    pbkdf2_iterations: 1000,
                    enrollment_id: None,
                    client_ip: None,
                }),
            ));
        }
        // Commits are held while the run goes, so whether its writes share a commit does not
        // depend on how the threads are scheduled: every job must queue its writes before any
        // is waited for (an ack's one, an enroll's key and agent: 30), or the run never gets
        // past its first job while the hold lasts.
        let before = store.commit_stats();
        let hold = store.hold_commits().unwrap();
        let remotes = crate::backend::ops::testkit::remotes();
        let replies = std::thread::scope(|scope| {
            let run = scope.spawn(|| run_batch(&store, &remotes, batch, SystemTime::now()));
            let deadline = Instant::now() + std::time::Duration::from_secs(60);
            let queued = || store.commit_stats().queued - before.queued - 1;
            while queued() < 30 && Instant::now() < deadline && !run.is_finished() {
                std::thread::yield_now();
            }
            let queued_while_held = queued();
            drop(hold);
            let replies = run.join().unwrap();
            assert_eq!(queued_while_held, 30, "writes queued before any commit");
            replies
        });
        let commits = store.commit_stats().commits - before.commits;
        assert_eq!(replies.len(), 26);
        for reply in &replies {
            match (&reply.to, &reply.output) {
                (99, JobOutput::Acked(out)) => assert!(out.is_err(), "forged key: {out:?}"),
                (_, JobOutput::Acked(Ok(out))) => assert_eq!(out.status, 200, "{out:?}"),
                (_, JobOutput::Enrolled(Ok(body))) => {
                    let id = body["item"]["id"].as_str().unwrap();
                    let agent = store.agent(id).unwrap().expect("agent durable");
                    let key = store.authenticate(&ApiKey {
                        id: agent.access_api_key_id.clone(),
                        secret: "wrong".into(),
                    });
                    assert!(matches!(key, Ok(None)), "its key is stored: {key:?}");
                }
                (to, other) => panic!("{to}: {other:?}"),
            }
        }
        // The hold's own commit, then the run's (writes that reached the committer with the
        // hold, before it blocked, share the hold's commit).
        assert!(
            commits <= 2,
            "20 policy acks and 5 enrolls took {commits} commits with the hold's"
        );
        for i in 0..20 {
            let agent = store.agent(&format!("a{i}")).unwrap().unwrap();
            assert_eq!(
                agent.policy_revision_idx, 3,
                "a{i} durable before its answer"
            );
        }
    }

    #[test]
    fn acks_and_enrolls_queued_together_are_taken_as_one_run() {
        let (tx, rx) = super::super::queue::job_queue::<Work<u32>>(16);
        let key = ApiKey {
            id: "k".into(),
            secret: "s".into(),
        };
        let enroll_of = |id: Option<&str>| {
            Job::Enroll(EnrollInput {
                key: key.clone(),
                agent_version: Ok("9.2.1".into()),
                body: crate::api::enroll::parse(b"{}"),
                pbkdf2_iterations: 1000,
                enrollment_id: id.map(str::to_owned),
                client_ip: None,
            })
        };
        let by = Instant::now() + std::time::Duration::from_secs(60);
        let queued = [
            (2, Job::Ack(ack_of(&key, "a2", 2))),
            (3, enroll_of(Some("e1"))),
            (4, enroll_of(None)),
            (5, enroll_of(None)),
            (6, Job::Ack(ack_of(&key, "a3", 2))),
            (7, Job::Ack(ack_of(&key, "a2", 2))),
            (8, Job::Ack(ack_of(&key, "a8", 2))),
        ];
        for (to, job) in queued {
            assert!(tx.try_send(Work::Job(to, job, by)).is_ok());
        }
        let mut held = VecDeque::new();
        let first = Work::Job(1, Job::Ack(ack_of(&key, "a1", 2)), by);
        match take_run(first, &rx, &mut held) {
            Work::Run(run) => {
                let tos: Vec<u32> = run.iter().map(|((to, _), _)| *to).collect();
                assert_eq!(tos, [1, 2, 3, 4, 5, 6, 8], "a second ack of a2 waits");
            }
            _ => panic!("not a run"),
        }
        assert_eq!(held.len(), 1);
        assert!(matches!(
            held.pop_front(),
            Some(Work::Job(7, Job::Ack(_), _))
        ));
        // Other work and a second enroll with the same enrollment id wait, in order.
        assert!(tx
            .try_send(Work::Job(10, enroll_of(Some("e1")), by))
            .is_ok());
        assert!(tx
            .try_send(Work::Job(11, Job::Authenticate(key.clone()), by))
            .is_ok());
        assert!(tx.try_send(Work::Job(12, enroll_of(None), by)).is_ok());
        let run = take_run(Work::Job(9, enroll_of(Some("e1")), by), &rx, &mut held);
        assert!(
            matches!(run, Work::Run(ref r) if r.len() == 2),
            "12 joins 9"
        );
        let held_tos: Vec<u32> = held
            .iter()
            .map(|w| match w {
                Work::Job(to, _, _) => *to,
                _ => 0,
            })
            .collect();
        assert_eq!(held_tos, [10, 11]);
        // A lone job stays a plain job and takes nothing else.
        let mut held = VecDeque::new();
        assert!(tx.try_send(Work::Job(14, enroll_of(None), by)).is_ok());
        let lone = take_run(
            Work::Job(13, Job::Authenticate(key.clone()), by),
            &rx,
            &mut held,
        );
        assert!(matches!(lone, Work::Job(13, Job::Authenticate(_), _)) && held.is_empty());
        assert!(matches!(
            take_run(Work::Job(15, enroll_of(None), by), &rx, &mut held),
            Work::Run(ref r) if r.len() == 2
        ));
        assert!(matches!(
            take_run(Work::Job(16, enroll_of(None), by), &rx, &mut held),
            Work::Job(16, Job::Enroll(_), _)
        ));
        assert!(held.is_empty());
    }
}
