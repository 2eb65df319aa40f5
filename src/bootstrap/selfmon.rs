//! The self-monitor of agent mode (fleet-protocol.md §6.5) and this server's own agent.
//!
//! With Elastic's Fleet Server, the Elastic Agent that hosts it enrolls itself into the Fleet
//! Server policy and checks in, which is how Kibana lists the Fleet Server. fleet-edge has no
//! hosting agent, so it does both itself, straight against the store: it finds its policy (by
//! `--fleet-server-policy`, else the one marked `default_fleet_server`), enrolls with an active
//! enrollment key of that policy (found through the service token), keeps its identity in
//! `<data-dir>/fleet-server-agent.json` (mode 0600), and writes its checkin state every
//! [`CHECKIN_EVERY`] and on every state change: `HEALTHY`/`DEGRADED` with §6.5's messages,
//! `local_metadata` naming fleet-edge, its version, host, OS and architecture, and one
//! `fleet-server` component. `/api/status` follows the state decided here.
//!
//! [`SelfMonitor::tick`] does one round of blocking store calls; the caller runs it on its own
//! thread every few seconds, never on the event loop.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Map, Value};

use super::overrides::fleet_server_input;
use crate::api::health::Health;
use crate::backend::interface::EnrollInput;
use crate::backend::ops::enroll::enroll;
use crate::backend::ops::replace_token::DEFAULT_ITERATIONS;
use crate::backend::{ApiKey, Store};
use crate::model::time::rfc3339_seconds;
use crate::model::PolicyDoc;
use crate::server_version::ServerVersion;

/// How often the own agent's checkin state is written while nothing changes.
pub const CHECKIN_EVERY: Duration = Duration::from_secs(30);

/// Pause between two rounds while the state is not HEALTHY, and the most a round may take then:
/// `/api/status` is back to HEALTHY within about a second of the store answering again.
pub const RECHECK_EVERY: Duration = Duration::from_millis(500);

/// The most a round may take while HEALTHY (a slow store still answers within it; a hung one
/// does not hold the monitor for the client's own timeouts and retries).
pub const HEALTHY_ROUND_BUDGET: Duration = Duration::from_secs(15);

/// The credentials of this server's own agent.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    /// The agent id.
    pub id: String,
    /// Its access key, `base64(id:key)`.
    pub access_api_key: String,
}

/// What one round found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    /// The self-monitor state.
    pub health: Health,
    /// Its message (§6.5).
    pub message: String,
}

/// The self-monitor: the policy, the own agent, the state.
#[derive(Debug)]
pub struct SelfMonitor {
    policy_id: Option<String>,
    identity_path: PathBuf,
    identity: Option<Identity>,
    state: Option<State>,
    last_checkin: Option<Instant>,
    /// When the last round began.
    last_round: Option<Instant>,
    /// The revision of the policy this server runs, reported as the own agent's
    /// `policy_revision_idx` (the implicit ack of §3.2).
    applied_revision: Option<i64>,
    /// The Fleet Server version this server claims: its own agent's version.
    server_version: ServerVersion,
}

impl SelfMonitor {
    /// A monitor for `--fleet-server-policy` (`None`: the default Fleet Server policy), keeping
    /// its identity in `data_dir`.
    pub fn new(policy_id: Option<String>, data_dir: &std::path::Path) -> Self {
        let identity_path = data_dir.join("fleet-server-agent.json");
        let identity = match std::fs::read(&identity_path) {
            Ok(bytes) => match serde_json::from_slice::<Identity>(&bytes) {
                Ok(id) => Some(id),
                Err(e) => {
                    log::warn!(
                        "ignoring {}: {e}; this Fleet Server enrolls itself again",
                        identity_path.display()
                    );
                    None
                }
            },
            Err(_) => None,
        };
        Self {
            policy_id,
            identity_path,
            identity,
            state: None,
            last_checkin: None,
            last_round: None,
            applied_revision: None,
            server_version: crate::server_version::BUILT_IN,
        }
    }

    /// The same monitor reporting `version` (`--server-version`) as its own agent's version.
    pub fn with_server_version(mut self, version: ServerVersion) -> Self {
        self.server_version = version;
        self
    }

    /// The own agent's id once enrolled.
    pub fn agent_id(&self) -> Option<&str> {
        self.identity.as_ref().map(|i| i.id.as_str())
    }

    /// The state of the last round.
    pub fn state(&self) -> Option<&State> {
        self.state.as_ref()
    }

    /// How long to wait before the next round: the regular 5 s while HEALTHY, much less while
    /// not, so a recovered store is seen at once.
    pub fn next_round_in(&self, regular: Duration) -> Duration {
        match &self.state {
            Some(s) if s.health == Health::Healthy => regular,
            _ => RECHECK_EVERY.min(regular),
        }
    }

    /// Whether a round is due at `at`: none ran yet, or [`next_round_in`](Self::next_round_in)
    /// has passed since the last one began.
    pub fn round_due(&self, at: Instant, regular: Duration) -> bool {
        self.last_round
            .is_none_or(|last| at >= last + self.next_round_in(regular))
    }

    /// One round: find the policy, enroll when needed, decide the state, check in when due.
    /// Returns the Fleet Server policy (with a `fleet-server` input) when there is one. The
    /// round's store calls (retries included) end by [`HEALTHY_ROUND_BUDGET`] while HEALTHY,
    /// by [`RECHECK_EVERY`] otherwise.
    pub fn tick(&mut self, store: &dyn Store, now: SystemTime, at: Instant) -> Option<PolicyDoc> {
        self.last_round = Some(at);
        let healthy = self
            .state
            .as_ref()
            .is_some_and(|s| s.health == Health::Healthy);
        let budget = if healthy {
            HEALTHY_ROUND_BUDGET
        } else {
            RECHECK_EVERY * 2
        };
        let _deadline = crate::backend::deadline::Scope::enter(at + budget);
        let (state, policy) = self.evaluate(store, now);
        let revision = policy.as_ref().map(|p| p.revision_idx);
        let new_revision = revision.is_some() && revision != self.applied_revision;
        if new_revision {
            // This server runs every revision of its policy as soon as it reads it.
            self.applied_revision = revision;
        }
        let changed = self.state.as_ref() != Some(&state);
        if changed {
            let log_it = |s: &State| match s.health {
                Health::Healthy => {
                    log::info!("self-monitor: {} ({})", s.health.as_str(), s.message)
                }
                _ => log::warn!("self-monitor: {} ({})", s.health.as_str(), s.message),
            };
            log_it(&state);
        }
        self.state = Some(state);
        let due = self
            .last_checkin
            .is_none_or(|t| at.saturating_duration_since(t) >= CHECKIN_EVERY);
        if (changed || new_revision || due) && self.identity.is_some() {
            if let Some(policy) = &policy {
                match self.check_in(store, policy, now) {
                    Ok(()) => self.last_checkin = Some(at),
                    Err(e) => {
                        log::warn!("self-monitor: cannot write this Fleet Server's checkin: {e}")
                    }
                }
            }
        }
        policy
    }

    fn evaluate(&mut self, store: &dyn Store, now: SystemTime) -> (State, Option<PolicyDoc>) {
        let state = |health, message: String| State { health, message };
        let policies = store.latest_policies();
        // Elasticsearch refusing for load is up and busy (often with this server's own
        // backlog), not failed: the state stays what it was.
        if let (Err(crate::backend::StoreError::TooManyRequests), Some(kept)) =
            (&policies, &self.state)
        {
            return (kept.clone(), None);
        }
        let policies = match policies {
            Ok(p) => p,
            Err(e) => {
                return (
                    state(
                        Health::Failed,
                        format!("Error - failed to query policies: {e}"),
                    ),
                    None,
                )
            }
        };
        let found = match &self.policy_id {
            Some(id) => policies.into_iter().find(|p| &p.policy_id == id),
            None => policies
                .into_iter()
                .filter(|p| p.default_fleet_server)
                .max_by_key(|p| p.revision_idx),
        };
        let Some(policy) = found else {
            let message = match &self.policy_id {
                Some(id) => format!("Waiting on policy with Fleet Server integration: {id}"),
                None => "Waiting on default policy with Fleet Server integration".to_owned(),
            };
            return (state(Health::Starting, message), None);
        };
        let id = policy.policy_id.clone();
        if fleet_server_input(&policy.data).is_none() {
            return (
                state(
                    Health::Starting,
                    format!("Waiting on fleet-server input to be added to policy: {id}"),
                ),
                None,
            );
        }
        let running = format!("Running on policy with Fleet Server integration: {id}");
        if let Some(identity) = &self.identity {
            match store.agent(&identity.id) {
                Ok(Some(agent)) if agent.active => {
                    return (state(Health::Healthy, running), Some(policy))
                }
                Ok(Some(_)) => {
                    return (
                        state(
                            Health::Degraded,
                            format!(
                                "{running}; this Fleet Server's agent {} was unenrolled in Fleet",
                                identity.id
                            ),
                        ),
                        Some(policy),
                    )
                }
                Ok(None) => {
                    log::warn!(
                        "self-monitor: agent {} of this Fleet Server is not in the store any more; enrolling again",
                        identity.id
                    );
                    self.identity = None;
                }
                Err(e) => {
                    return (
                        state(
                            Health::Failed,
                            format!("Error - failed to read this Fleet Server's agent: {e}"),
                        ),
                        Some(policy),
                    )
                }
            }
        }
        let key = match store.policy_enrollment_key(&id) {
            Ok(Some(key)) => key,
            Ok(None) => {
                return (
                    state(
                        Health::Starting,
                        format!("Waiting on active enrollment keys to be created in policy with Fleet Server integration: {id}"),
                    ),
                    Some(policy),
                )
            }
            Err(e) => {
                return (
                    state(Health::Failed, format!("Error - failed to find enrollment keys: {e}")),
                    Some(policy),
                )
            }
        };
        let bootstrapping = state(
            Health::Degraded,
            format!("{running}; missing config fleet.agent.id (expected during bootstrap process)"),
        );
        match self.enroll(store, &key.api_key, now) {
            Ok(identity) => {
                log::info!(
                    "self-monitor: this Fleet Server enrolled itself into policy {id} as agent {}",
                    identity.id
                );
                self.save(&identity);
                self.identity = Some(identity);
                (state(Health::Healthy, running), Some(policy))
            }
            Err(e) => {
                log::warn!(
                    "self-monitor: enrolling this Fleet Server into policy {id} failed: {e}"
                );
                (bootstrapping, Some(policy))
            }
        }
    }

    fn enroll(&self, store: &dyn Store, token: &str, now: SystemTime) -> Result<Identity, String> {
        let key = crate::api::auth::parse_token(token).map_err(|e| e.to_string())?;
        let body = json!({"type": "PERMANENT", "metadata": {"local": local_metadata("", self.server_version), "tags": []}});
        let input = EnrollInput {
            key,
            agent_version: Ok(self.server_version.to_string()),
            body: crate::api::enroll::parse(body.to_string().as_bytes()),
            pbkdf2_iterations: DEFAULT_ITERATIONS,
            enrollment_id: None,
            client_ip: None,
        };
        let reply = enroll(store, &input, now).map_err(|e| e.to_string())?;
        let item = &reply["item"];
        match (item["id"].as_str(), item["access_api_key"].as_str()) {
            (Some(id), Some(key)) => Ok(Identity {
                id: id.to_owned(),
                access_api_key: key.to_owned(),
            }),
            _ => Err(format!("the enroll answer has no id or key: {reply}")),
        }
    }

    fn save(&self, identity: &Identity) {
        let write = || -> std::io::Result<()> {
            if let Some(dir) = self.identity_path.parent() {
                crate::fsmode::private_dir(dir)?;
            }
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&self.identity_path)?;
            std::io::Write::write_all(&mut file, &serde_json::to_vec(identity)?)?;
            file.sync_all()
        };
        if let Err(e) = write() {
            log::warn!(
                "cannot keep this Fleet Server's agent identity in {}: {e}; it enrolls again after a restart",
                self.identity_path.display()
            );
        }
    }

    /// Writes the own agent's checkin state, as the checkin bulk writer does for agents.
    fn check_in(
        &self,
        store: &dyn Store,
        policy: &PolicyDoc,
        now: SystemTime,
    ) -> Result<(), String> {
        let (Some(identity), Some(state)) = (&self.identity, &self.state) else {
            return Ok(());
        };
        let status = match state.health {
            Health::Healthy => "online",
            Health::Degraded => "DEGRADED",
            Health::Starting => "starting",
            Health::Failed | Health::Stopping => "error",
        };
        let component_status = state.health.as_str();
        let input_id = fleet_server_input(&policy.data)
            .and_then(|i| i.get("id"))
            .and_then(Value::as_str)
            .unwrap_or("fleet-server");
        let stamp = rfc3339_seconds(now);
        let mut fields = Map::new();
        fields.insert("last_checkin".into(), json!(stamp));
        fields.insert("updated_at".into(), json!(stamp));
        fields.insert("last_checkin_status".into(), json!(status));
        fields.insert("last_checkin_message".into(), json!(state.message));
        fields.insert(
            "agent".into(),
            json!({"id": identity.id, "version": self.server_version.to_string()}),
        );
        fields.insert(
            "local_metadata".into(),
            local_metadata(&identity.id, self.server_version),
        );
        fields.insert(
            "components".into(),
            json!([{
                "id": "fleet-server-es-default",
                "type": "fleet-server",
                "status": component_status,
                "message": state.message,
                "units": [
                    {"id": format!("fleet-server-es-default-{input_id}"), "type": "input",
                     "status": component_status, "message": state.message},
                    {"id": "fleet-server-es-default", "type": "output",
                     "status": component_status, "message": state.message}
                ]
            }]),
        );
        if let Some(revision) = self.applied_revision {
            fields.insert("agent_policy_id".into(), json!(policy.policy_id));
            fields.insert("policy_revision_idx".into(), json!(revision));
        }
        store
            .update_agent(&identity.id, &fields)
            .map_err(|e| e.to_string())
    }
}

/// The access key of the own agent, for tests and the long `/api/status` form.
pub fn access_key(identity: &Identity) -> Option<ApiKey> {
    crate::api::auth::parse_token(&identity.access_api_key).ok()
}

/// `local_metadata` of this server's own agent: fleet-edge, its version, host, OS, architecture.
pub fn local_metadata(agent_id: &str, version: ServerVersion) -> Value {
    let hostname = crate::config::system_hostname().unwrap_or_else(|| "localhost".into());
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    };
    let os_release = read("/etc/os-release");
    let os_field = |key: &str| {
        os_release
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(|v| v.trim_matches('"').to_owned())
            .unwrap_or_default()
    };
    let os = std::env::consts::OS;
    json!({
        "elastic": {"agent": {
            "id": agent_id,
            "version": version.to_string(),
            "snapshot": false,
            "upgradeable": false,
            "log_level": log::max_level().to_string().to_ascii_lowercase(),
            "build": {"original": format!(
                "fleet-edge {} (claiming Fleet Server {version})",
                env!("CARGO_PKG_VERSION")
            )}
        }},
        "host": {
            "hostname": hostname,
            "name": hostname,
            "architecture": std::env::consts::ARCH,
            "id": read("/etc/machine-id")
        },
        "os": {
            "family": os,
            "platform": os,
            "name": os_field("NAME"),
            "version": os_field("VERSION_ID"),
            "full": os_field("PRETTY_NAME"),
            "kernel": read("/proc/sys/kernel/osrelease")
        }
    })
}

#[cfg(test)]
mod tests;
