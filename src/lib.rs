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
//! * [`core`]: sans-IO building blocks shared by the loop: the deadline heap, health state.
//! * [`model`]: the Fleet documents (agents, actions, policies, enrollment keys, results).
//! * [`backend`]: the `Store` interface, its implementations, and the reference in-memory store.
//! * [`embedded`]: single-box mode: the local store, policy files, the quick start.
//! * [`mgmt`]: the management API of single-box mode (agents, tokens, policies, actions).
//! * [`net`]: the only module that touches sockets: the mio event loop, TLS sessions, drain.
//! * [`server_version`]: the Fleet Server version this server claims (a leaf; its value travels
//!   in the configuration).
//! * [`logging`]: text or ECS-JSON log lines.
//!
//! Invariants: the event loop never blocks; `api`, `core` and `http` never read the clock (the
//! caller passes `now`), never read the environment and never touch a socket; no panic is
//! reachable from network input.
#![forbid(unsafe_code)]

pub mod api;
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
pub mod net;
pub mod opamp;
pub mod panics;
pub mod server_version;
pub mod tls;
