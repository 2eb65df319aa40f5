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
/// ([`start_admitted`]). Other work taken on the way (checkin starts, tasks, a second job of the same
/// agent, a job of an agent that `pending` writes) is `held`, in order, to run right after the
/// batch; such work runs only once `pending` is durable (`workers.rs`).
pub(super) fn take_run<T>(
    first: Work<T>,
    rx: &JobsRx<Work<T>>,
    held: &mut VecDeque<Work<T>>,
    pending: Option<&PendingRun<T>>,
) -> Work<T> {
    let Work::Job(to, job, deadline) = first else {
        return first;
    };
    let conflicts = |job: &Batched| pending.is_some_and(|p| p.conflicts(job));
    let mut run = match Batched::of(job) {
        Sorted::Batched(batched) if !conflicts(&batched) => vec![((to, deadline), batched)],
        Sorted::Batched(batched) => return Work::Job(to, batched.into_job(), deadline),
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
                Sorted::Batched(batched) if batched.fits(&run) && !conflicts(&batched) => {
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

/// A batch whose jobs have run and whose writes are queued for a commit: its answers wait for
/// that commit ([`PendingRun::finish`]). Meanwhile the worker may run the next batch
/// (`workers.rs`), so the next batch's work overlaps this one's fsyncs instead of following them.
pub(super) struct PendingRun<T> {
    ran: Vec<Ran<(T, Instant)>>,
    count: usize,
    began: Instant,
    earliest: Instant,
    now: SystemTime,
    /// The agents and enrollment ids the batch writes: a job of the next batch touching one of
    /// them waits until this batch is durable (it would read what this batch has not committed).
    agents: Vec<String>,
    enrollments: Vec<String>,
}

/// One job of a batch after it ran: its answer and the writes it waits for.
struct Ran<T> {
    to: T,
    job: Batched,
    output: JobOutput,
    deferred: crate::backend::deferred::Deferred,
}

impl<T> PendingRun<T> {
    /// Whether nothing of the batch waits for a commit (stores that do not defer writes,
    /// Elasticsearch and the memory store): it is finished at once.
    pub(super) fn is_durable(&self) -> bool {
        self.ran.iter().all(|r| r.deferred.is_empty())
    }

    /// Whether `job` touches what this batch writes (see [`PendingRun::agents`]).
    fn conflicts(&self, job: &Batched) -> bool {
        match job {
            Batched::Ack(a) => self.agents.contains(&a.agent_id),
            Batched::Enroll(e) => e
                .enrollment_id
                .as_ref()
                .is_some_and(|id| self.enrollments.contains(id)),
        }
    }

    /// Waits for the batch's writes and answers each job (a job whose writes failed is run again
    /// on its own, as in `run_batch`); the batch's time goes to admission.
    pub(super) fn finish(
        self,
        store: &dyn Store,
        remotes: &RemoteClusters,
        admission: &Admission,
    ) -> Vec<Reply<T>> {
        let replies = {
            let _deadline = crate::backend::deadline::Scope::enter(self.earliest);
            finish_ran(store, remotes, self.ran, self.now)
        };
        admission.finished_batch(self.count, self.began.elapsed());
        replies
            .into_iter()
            .map(
                |Reply {
                     to: (to, _),
                     output,
                 }| Reply { to, output },
            )
            .collect()
    }
}

/// Runs a batch taken by [`take_run`] under admission (`backend::admission`): a job already
/// past its deadline is answered 503 without touching the store (returned at once), the others
/// run together bounded by the earliest of their deadlines, their writes queued for a commit
/// ([`PendingRun`]; the batch's time, once finished, is measured as one batch of that many jobs:
/// what admission estimates batches by).
pub(super) fn start_admitted<T>(
    store: &dyn Store,
    remotes: &RemoteClusters,
    admission: &Admission,
    batch: Vec<((T, Instant), Batched)>,
) -> (Vec<Reply<T>>, Option<PendingRun<T>>) {
    let began = Instant::now();
    let mut replies = Vec::new();
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
        return (replies, None);
    };
    let count = live.len();
    let mut agents = Vec::new();
    let mut enrollments = Vec::new();
    for (_, job) in &live {
        match job {
            Batched::Ack(a) => agents.push(a.agent_id.clone()),
            Batched::Enroll(e) => enrollments.extend(e.enrollment_id.clone()),
        }
    }
    let now = SystemTime::now();
    let ran = {
        let _deadline = crate::backend::deadline::Scope::enter(earliest);
        start_ran(store, remotes, live, now)
    };
    let pending = PendingRun {
        ran,
        count,
        began,
        earliest,
        now,
        agents,
        enrollments,
    };
    (replies, Some(pending))
}

/// Runs a batch of acks and enrolls with their store writes deferred ([`super::deferred`]):
/// every job runs, then every deferred write is waited for, so a batch costs about one commit
/// instead of one or two per job, and nothing is answered before its writes are durable. A job
/// whose deferred writes failed is run again on its own and answered with what that run says (a
/// policy ack rewrites the same fields; an enroll makes a new key and agent, and the first
/// attempt's key, if its commit went through, is left unused). The worker does the same in two
/// halves ([`start_admitted`], [`PendingRun::finish`]) so that batches overlap.
#[cfg(test)]
pub(super) fn run_batch<T>(
    store: &dyn Store,
    remotes: &RemoteClusters,
    batch: Vec<(T, Batched)>,
    now: SystemTime,
) -> Vec<Reply<T>> {
    let ran = start_ran(store, remotes, batch, now);
    finish_ran(store, remotes, ran, now)
}

/// Runs every job of a batch, its writes deferred.
fn start_ran<T>(
    store: &dyn Store,
    remotes: &RemoteClusters,
    batch: Vec<(T, Batched)>,
    now: SystemTime,
) -> Vec<Ran<T>> {
    batch
        .into_iter()
        .map(|(to, job)| {
            let (output, deferred) =
                crate::backend::deferred::collect(|| job.run(store, remotes, now));
            Ran {
                to,
                job,
                output,
                deferred,
            }
        })
        .collect()
}

/// Waits for every deferred write of a batch; a job whose writes failed runs again alone.
fn finish_ran<T>(
    store: &dyn Store,
    remotes: &RemoteClusters,
    ran: Vec<Ran<T>>,
    now: SystemTime,
) -> Vec<Reply<T>> {
    ran.into_iter()
        .map(|r| {
            let output = match r.deferred.wait() {
                Ok(()) => r.output,
                Err(_) => r.job.run(store, remotes, now),
            };
            Reply { to: r.to, output }
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
        match take_run(first, &rx, &mut held, None) {
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
        let run = take_run(
            Work::Job(9, enroll_of(Some("e1")), by),
            &rx,
            &mut held,
            None,
        );
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
            None,
        );
        assert!(matches!(lone, Work::Job(13, Job::Authenticate(_), _)) && held.is_empty());
        assert!(matches!(
            take_run(Work::Job(15, enroll_of(None), by), &rx, &mut held, None),
            Work::Run(ref r) if r.len() == 2
        ));
        assert!(matches!(
            take_run(Work::Job(16, enroll_of(None), by), &rx, &mut held, None),
            Work::Job(16, Job::Enroll(_), _)
        ));
        assert!(held.is_empty());
    }

    fn agent_with_key(store: &LocalStore, id: &str) -> ApiKey {
        let key = store
            .create_api_key(&NewApiKey {
                name: id.into(),
                role_descriptors: json!({}),
                metadata: json!({}),
            })
            .unwrap();
        store
            .create_agent(&Agent {
                id: id.into(),
                active: true,
                access_api_key_id: key.id.clone(),
                agent: Some(crate::model::AgentInfo {
                    id: id.into(),
                    version: "9.2.1".into(),
                    kind: String::new(),
                }),
                policy_id: "p".into(),
                policy_revision_idx: 1,
                ..Agent::default()
            })
            .unwrap();
        key
    }

    #[test]
    fn a_batch_runs_while_the_previous_one_commits_and_its_agents_wait_for_that_commit() {
        let dir = TempDir::new("ack-pipeline");
        let store = LocalStore::open(dir.path()).unwrap();
        let keys: Vec<ApiKey> = (0..4)
            .map(|i| agent_with_key(&store, &format!("a{i}")))
            .collect();
        let ack = |i: usize| Job::Ack(ack_of(&keys[i], &format!("a{i}"), 3));
        let remotes = crate::backend::ops::testkit::remotes();
        let admission = Admission::new(1);
        let by = Instant::now() + std::time::Duration::from_secs(60);
        let (tx, rx) = super::super::queue::job_queue::<Work<usize>>(16);
        for i in [0, 1] {
            assert!(tx.try_send(Work::Job(i, ack(i), by)).is_ok());
        }
        let mut held = VecDeque::new();
        let first = rx.try_recv().unwrap();
        let Work::Run(batch) = take_run(first, &rx, &mut held, None) else {
            panic!("not a run");
        };
        // The first batch's commit is held: its answers cannot come, the next batch still runs.
        let hold = store.hold_commits().unwrap();
        let (now, first) = start_admitted(&store, &remotes, &admission, batch);
        let first = first.unwrap();
        assert!(now.is_empty() && !first.is_durable());
        for i in [1, 3] {
            assert!(tx.try_send(Work::Job(i, ack(i), by)).is_ok());
        }
        let Work::Run(batch) = take_run(Work::Job(2, ack(2), by), &rx, &mut held, Some(&first))
        else {
            panic!("not a run");
        };
        let tos: Vec<usize> = batch.iter().map(|((to, _), _)| *to).collect();
        assert_eq!(
            tos,
            [2, 3],
            "a1's second ack waits for the first batch's commit"
        );
        assert!(matches!(
            held.pop_front(),
            Some(Work::Job(1, Job::Ack(_), _))
        ));
        let (_, second) = start_admitted(&store, &remotes, &admission, batch);
        let second = second.unwrap();
        drop(hold);
        let mut answered: Vec<usize> = Vec::new();
        for run in [first, second] {
            for reply in run.finish(&store, &remotes, &admission) {
                let JobOutput::Acked(Ok(out)) = &reply.output else {
                    panic!("{}: {:?}", reply.to, reply.output);
                };
                assert_eq!(out.status, 200);
                answered.push(reply.to);
            }
        }
        assert_eq!(answered, [0, 1, 2, 3]);
        for i in 0..4 {
            let agent = store.agent(&format!("a{i}")).unwrap().unwrap();
            assert_eq!(agent.policy_revision_idx, 3, "a{i} durable once answered");
        }
    }
}
