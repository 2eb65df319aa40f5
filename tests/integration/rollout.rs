//! A rollout wakes parked agents at the pace the ack and checkin limits admit: every woken agent
//! acks at once, and acks beyond the ack bucket would get 429 and a minute of agent backoff.

use std::time::Duration;

use fleet_edge::api::limits::{LimitSpec, SizingTable};

use crate::protocol::{checks, park, policy};
use crate::support::agent::Agent;
use crate::support::inproc::{InProc, Options};
use crate::support::stores;

const fn spec(interval_ms: u64, burst: u32, max: u32) -> LimitSpec {
    LimitSpec {
        interval: Duration::from_millis(interval_ms),
        burst,
        max,
    }
}

/// Roomy limits except the ack bucket: 4 at once, then 100/s.
static TIGHT_ACKS: SizingTable = SizingTable {
    name: "test-tight-acks",
    max_agents: 100,
    min_ram_mib: 0,
    specs: [
        spec(1, 1000, 0),
        spec(1, 1000, 0),
        spec(10, 4, 0),
        spec(1, 1000, 0),
        spec(1, 1000, 0),
    ],
};

#[test]
fn a_rollout_to_more_agents_than_the_ack_burst_is_paced_and_every_ack_is_admitted() {
    let fixture = stores::memory();
    fixture.add_policy(policy("edge-policy", 1, checks()));
    let server = InProc::start(
        fixture.store(),
        Options {
            long_poll: "60s",
            limits_table: Some(&TIGHT_ACKS),
            ..Options::default()
        },
    );
    let token = fixture.add_token("edge-policy").encoded();
    let mut agents: Vec<Agent> = (0..12)
        .map(|_| Agent::enroll(server.addr, server.tls(), &token, &[]).0)
        .collect();
    // Revision 1 applied (acks one by one, within the bucket's refill).
    for a in &mut agents {
        let (_, body) = a.checkin();
        let action = body["actions"][0].clone();
        a.apply_policy(&action);
        let id = action["id"].as_str().unwrap().to_owned();
        let agent_id = a.id.clone();
        loop {
            let (resp, _) = a.ack(&[(&id, &agent_id)]);
            if resp.status == 200 {
                break;
            }
            assert_eq!(resp.status, 429);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let parked: Vec<_> = agents.into_iter().map(park).collect();
    server.wait_parked(12);
    fixture.add_policy(policy("edge-policy", 2, checks()));
    // Each agent acks the moment its POLICY_CHANGE arrives, as the real agent does.
    let acks: Vec<_> = parked
        .into_iter()
        .map(|handle| {
            std::thread::spawn(move || {
                let (mut agent, status, body) = handle.join().unwrap();
                assert_eq!(status, 200);
                let action = body["actions"][0].clone();
                assert_eq!(action["id"], "policy:edge-policy:2");
                let id = action["id"].as_str().unwrap().to_owned();
                let agent_id = agent.id.clone();
                agent.ack(&[(&id, &agent_id)]).0.status
            })
        })
        .collect();
    let statuses: Vec<u16> = acks.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(
        statuses.iter().all(|&s| s == 200),
        "acks refused during the rollout: {statuses:?}"
    );
}
