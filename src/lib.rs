//! fleet-edge: a small, single-threaded, wire-compatible Elastic Fleet Server.
//!
//! ```text
//!  agents ──TLS──▶ net (mio Poll, Slab<Conn>, rustls) ──bytes──▶ http (sans-IO decode)
//!                       ▲                                          │ Request
//!                       │ bytes                                    ▼
//!                       └──────── http (encode) ◀── Response ── api (sans-IO decisions)
//!                                                                  │ BackendRequest ▲ BackendReply / Event
//!                                                                  ▼                │ (channel + mio Waker)
//!                                           backend thread(s): es (ureq) │ local (embedded store)
//! ```
//!
//! Module map (dependency direction `main → net → (api, core, http)`; `config` and `tls` are leaves):
//! * [`cli`]: the operator's subcommands, clients of the management API.
//! * [`config`]: every flag, environment variable and default; precedence; startup validation.
//! * [`tls`]: PEM certificates and keys, encrypted keys, self-signed generation, fingerprints,
//!   rustls server configuration with client authentication.
//! * [`http`]: sans-IO HTTP/1.1 decoding and encoding, gzip, the JSON error body.
//! * [`api`]: one file per endpoint; pure functions from request and state to a response.
//! * [`core`]: sans-IO Fleet logic: the engine ([`core::fleet::Fleet`], the only owner of Fleet
//!   state, driven by the loop with `handle_*`/`poll_*`), the long-poll rules, the deadline heap.
//! * [`model`]: the Fleet documents (agents, actions, policies, enrollment keys, results).
//! * [`transform`]: stateless Fleet transforms (policy preparation, action shaping, secrets,
//!   Go-compatible JSON), shared by `backend`, `core`, `api` and `mgmt`.
//! * [`backend`]: the `Store` interface, its implementations, and the reference in-memory store.
//! * [`embedded`]: single-box mode: the local store, policy files, the quick start.
//! * [`mgmt`]: the management API of single-box mode (agents, tokens, policies, actions).
//! * [`net`]: the only module that touches sockets: the mio event loop, TLS sessions, drain.
//! * [`server_version`]: the Fleet Server version this server claims (a leaf; its value travels
//!   in the configuration).
//! * [`logging`]: text or ECS-JSON log lines.
//!
//! Thread budget (checked by `tests/integration/threads.rs`, which counts `/proc/<pid>/task` of
//! the running binary): embedded mode at most 4 threads, Elasticsearch (and agent) mode at most 7.
//!
//! | thread | mode | why |
//! |---|---|---|
//! | `fleet-edge` (main) | all | the event loop: every socket, TLS session, timer and parked long poll |
//! | `fleet-edge-backend-N` | all: 1 embedded, 4 Elasticsearch ([`net::backend_workers`]) | blocking store calls; an Elasticsearch call can wait a network round trip or a retry, so four overlap; the local store answers from disk, one is enough. They also run the loop's periodic chores (policy-file scan every 500 ms and within milliseconds of an inotify event on the policy directory, agent-mode self-monitor every 5 s) and SIGHUP reloads |
//! | `local-store-commit` | embedded | group commit: one fsync for the writes of many workers' requests |
//! | `fleet-edge-monitor` | embedded (and the memory store) | follows the store's change feed (commit notifications) and relays new policies and actions to the loop |
//! | `fleet-edge-es-follow-0`, `-1` | Elasticsearch | long-poll `global_checkpoints` of `.fleet-policies` and `.fleet-actions` and deliver new documents to the loop themselves; the actions checkpoint also bounds the pending-actions query |
//!
//! Transient: a reload runs on its own `fleet-edge-reload` thread only when the server has no
//! store or the job queue is full; when agent mode moves to another Elasticsearch, the old
//! store's followers end when their long poll returns (up to `monitor.poll_timeout`, 4 min),
//! delivering nothing meanwhile. [`backend::workers::Backend`] joins the threads it started
//! when the server stops, so a rebind never runs two feeds.
//!
//! Invariants: the event loop never blocks; `api`, `core` and `http` never read the clock (the
//! caller passes `now`), never read the environment and never touch a socket; no panic is
//! reachable from network input.
#![forbid(unsafe_code)]
// Tests drive real clocks, sleeps and environments; production code reads them only at the
// edges (clippy.toml `disallowed-methods`, allowed item by item in net, backend, bootstrap,
// config).
#![cfg_attr(test, allow(clippy::disallowed_methods))]

pub mod api;
#[allow(
    clippy::disallowed_methods,
    reason = "backend threads own nothing the loop needs: they read the clock, back off and sleep (ops excepted)"
)]
pub mod backend;
pub mod bootstrap;
pub mod build_info;
pub mod cli;
pub mod config;
pub mod core;
pub mod embedded;
pub mod files;
pub mod fsmode;
pub mod http;
pub mod logging;
pub mod mgmt;
pub mod model;
#[allow(
    clippy::disallowed_methods,
    reason = "the event loop is the edge: it reads the clock once per iteration and passes `now` in"
)]
pub mod net;
pub mod opamp;
pub mod panics;
pub mod server_version;
pub mod tls;
pub mod transform;
