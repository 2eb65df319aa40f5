//! The job deadline bounds every Elasticsearch call (issue 15 §1): a slow answer, a hung
//! cluster and a burst of retryable statuses all end by the deadline, with `Unavailable` (a
//! 503 for the agent, never a 401), while a call with time to spare still succeeds.

use std::time::{Duration, Instant};

use es_standin::{Options, StandIn};

use super::{quick, settings};
use crate::backend::deadline;
use crate::backend::es::{EsOptions, EsStore};
use crate::backend::{Store, StoreError};
use crate::model::Agent;

/// A store whose own retries would take many seconds: only the deadline can end them sooner.
fn patient(es: &StandIn) -> EsStore {
    let opts = EsOptions {
        max_retries: 20,
        backoff_initial: Duration::from_millis(400),
        backoff_max: Duration::from_secs(2),
        ..quick()
    };
    EsStore::connect_with(&settings(es), Some(Duration::from_secs(10)), opts).unwrap()
}

fn timed<T>(budget: Duration, f: impl FnOnce() -> T) -> (T, Duration) {
    let began = Instant::now();
    let out = deadline::within(began + budget, f);
    (out, began.elapsed())
}

#[test]
fn slow_hung_and_refusing_clusters_end_by_the_deadline() {
    let es = StandIn::start(Options::default()).unwrap();
    let store = patient(&es);
    store
        .create_agent(&Agent {
            id: "d1".into(),
            active: true,
            ..Agent::default()
        })
        .unwrap();
    let budget = Duration::from_millis(600);
    let slack = Duration::from_millis(400);

    es.faults().latency(Duration::from_secs(3));
    let (out, took) = timed(budget, || store.agent("d1"));
    assert!(matches!(out, Err(StoreError::Unavailable(_))), "{out:?}");
    assert!(took < budget + slack, "slow: {took:?}");
    // With time to spare the same slow call succeeds.
    let (out, _) = timed(Duration::from_secs(10), || store.agent("d1"));
    assert_eq!(out.unwrap().unwrap().id, "d1");
    es.faults().latency(Duration::ZERO);

    es.faults().hang(true);
    let (out, took) = timed(budget, || store.agent("d1"));
    assert!(matches!(out, Err(StoreError::Unavailable(_))), "{out:?}");
    assert!(took < budget + slack, "hung: {took:?}");
    es.faults().hang(false);

    // 20 retries 0.4 → 2 s apart would take over 30 s; the deadline stops them.
    es.faults().fail_next(1000, 503);
    let (out, took) = timed(Duration::from_millis(1500), || store.agent("d1"));
    assert!(matches!(out, Err(StoreError::Unavailable(_))), "{out:?}");
    assert!(took < Duration::from_millis(1500) + slack, "503s: {took:?}");
    es.faults().fail_next(1000, 429);
    let (out, took) = timed(Duration::from_millis(1500), || store.agent("d1"));
    assert_eq!(out, Err(StoreError::TooManyRequests));
    assert!(took < Duration::from_millis(1500) + slack, "429s: {took:?}");
    es.faults().clear();

    es.faults().down(None);
    let (out, took) = timed(budget, || store.agent("d1"));
    assert!(matches!(out, Err(StoreError::Unavailable(_))), "{out:?}");
    assert!(took < budget + slack, "down: {took:?}");
    es.faults().up();

    // A deadline already passed makes no request at all.
    let (out, _) = timed(Duration::ZERO, || store.agent("d1"));
    assert!(matches!(out, Err(StoreError::Unavailable(_))), "{out:?}");
    assert_eq!(store.agent("d1").unwrap().unwrap().id, "d1");
}
