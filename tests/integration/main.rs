//! fleet-edge integration tests: the real binary, real sockets on 127.0.0.1, real TLS with
//! certificates generated at test time. One test binary; its modules are the table of contents:
//!
//! * `docs`: the README configuration table and the packaged env file against the settings.
//! * `cli`: `--help` against the seeds' flag tables, `--print-config`, startup errors (exit 2).
//! * `tls_modes`: one-way TLS, mTLS required/optional, encrypted keys, self-signed generation and
//!   reuse, plain HTTP.
//! * `http_wire`: status endpoint, headers, keep-alive, limits (431, 400 bodies), gzip bombs.
//! * `default_policy`: the embedded default policy's `fleet.hosts` and output, the quick start's
//!   output line, the problem in `fleet-edge agents`, `--default-output-*` validation.
//! * `lifecycle`: slow-loris timeout, connection gate (429 + Retry-After), SIGTERM drain.
//! * `auth_cache`: the API-key cache through the server: one key check per TTL, refusal at once
//!   after an UNENROLL ack.
//! * `es_tls`: TLS to Elasticsearch from the binary: CA file, trusted fingerprint, mTLS,
//!   insecure, the startup failures as one sentence, Elasticsearch up only after startup.
//! * `backup`: `fleet-edge backup` under load, `restore` into an empty directory and a server on
//!   it; refusal of a non-empty directory; a backup with no server running.
//! * `reload`: SIGHUP: certificate rotation under 500 parked agents, a failed reload, the admin
//!   token and the log level.
//! * `hardening`: data-dir file modes, descriptor exhaustion (management API and status still
//!   answer), the management API off loopback over TLS only, a worker panic.
//! * `secrets`: a whole session at trace level (Elasticsearch and embedded modes, the
//!   management token) logs no secret, in text, hex or split hex dumps.
//! * `opamp`: OpenTelemetry collectors on `/v1/opamp` through real npm OpAMP clients (HTTP and
//!   WebSocket): enrollment, documents member by member on every store, error rows, remote
//!   configuration, the operator's view.
//! * `outage`: Elasticsearch hanging or down: every request answered by its deadline (503 +
//!   jittered `Retry-After`), `/api/status` HEALTHY within 3 s of the cluster coming back.
//! * `airgap`: the PGP key endpoint's rows and the artifact mirror under `/downloads/` (ranges,
//!   HEAD, validators, traversal, symlinks out, memory while streaming a 200 MiB file).
//! * `endpoint_artifacts`: Elastic Defend's artifact downloads and their policy-based
//!   authorization rows, on every store.
//! * `remote_outputs`: `remote_elasticsearch` outputs' keys on a second cluster (every store).
//! * `delivery`: file delivery to agents (`GET /api/fleet/file/{id}`) on every store, whole and
//!   in ranges, and every error row of the endpoint.
//! * `policy_watch`: the loop's directory watch runs a chore when a policy file is renamed into
//!   place or written (whole, even in several steps), long before the chore's period.
//! * `threads`: the thread budget of `src/lib.rs` counted in `/proc/<pid>/task` (embedded and
//!   Elasticsearch mode); a policy-file edit reaches a parked agent within a second.
//! * `uploads`: file uploads as the agent's uploader makes them (every store), every upload
//!   error row over the wire, the upload limiters.
//! * `uploads_cli`: the diagnostics workflow through the binary (`diagnostics --wait`, `files`,
//!   the management API's listing and download) and a kill -9 during an upload.
//!
//! `support` starts servers, builds clients and certificates; waits are on conditions with
//! deadlines, never bare sleeps.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Tests drive real processes: they read clocks, sleep in bounded polls and set environments.
#![allow(clippy::disallowed_methods)]

mod support;

/// One `#[test]` per store for each named test function taking a `Box<dyn support::stores::Fixture>`:
/// the same scripted agents run against every backend.
macro_rules! on_every_store {
    ($($test:ident),* $(,)?) => {
        mod memory_store {
            $( #[test] fn $test() { super::$test(crate::support::stores::memory()) } )*
        }
        mod local_store {
            $( #[test] fn $test() { super::$test(crate::support::stores::local()) } )*
        }
        mod es_store {
            $( #[test] fn $test() { super::$test(crate::support::stores::es()) } )*
        }
    };
}

mod agent_behaviours;
mod agent_mode;
mod airgap;
mod audit;
mod auth_cache;
mod backup;
mod bodies;
mod cli;
mod console;
mod default_policy;
mod delivery;
mod docs;
mod embedded;
mod endpoint_artifacts;
mod es_tls;
mod hardening;
mod http_wire;
mod kibana_api;
mod large_checkins;
mod lifecycle;
mod management;
mod monitoring;
mod opamp;
mod outage;
mod policy_watch;
mod production;
mod protocol;
mod races;
mod reload;
mod remote_outputs;
mod rollout;
mod rsa_certs;
mod secrets;
mod stored_documents;
mod threads;
mod tls_modes;
mod uploads;
mod uploads_cli;
