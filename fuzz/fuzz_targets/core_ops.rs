//! Fuzz target `core_ops`: arbitrary operation sequences replayed against the sans-IO Fleet
//! engine (`core::fleet`) through its scenario harness — requests from six connections
//! (checkins, enrolls with and without enrollment ids, acks, status, management listings,
//! OpAMP messages and upgrades, WebSocket messages, over-capacity and reserve requests), backend
//! replies in any order with successes and failures of every job kind, refused jobs, closes, the
//! virtual clock moving from deadline to deadline, new policy revisions (with and without output
//! keys to make), live actions, store outages and the drain.
//!
//! After every operation the harness checks the invariants: every request answered at most
//! once, no answer to a closed connection, no waiter, in-flight request, starting checkin or
//! enrollment left for a closed connection, parked exactly when a waiter exists, one checkin
//! batch in flight at most, no deadline left in the past. At the end the backend answers
//! everything and the drain runs: every request must have had its answer and the checkin state
//! must be written. A broken invariant panics with its description.
//!
//! Input layout: one byte per opcode and per operand (`core::fleet::replay`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = fleet_edge::core::fleet::replay::replay(data) {
        panic!("{violation}");
    }
});
