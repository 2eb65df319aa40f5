//! An agent's status as Kibana computes it (Kibana's `build_status_runtime_field.ts`, the
//! runtime field its agent list, counts and filters use), from the stored agent document alone:
//! pure, with `now` and the policy's inactivity timeout passed in. The order of the tests is
//! Kibana's, so that the same document shows the same status here and in Kibana:
//!
//! 1. not `active` → `unenrolled`;
//! 2. last checkin (else enrolment) older than the policy's `inactivity_timeout` → `inactive`;
//! 3. `audit_unenrolled_reason` `uninstall` → `uninstalled`, `orphaned` → `orphaned`;
//! 4. last checkin older than the offline threshold (Kibana's [`OFFLINE_AFTER`] unless the
//!    operator set another, `--agent-offline-after`), or an OpAMP `disconnected` → `offline`;
//! 5. no acknowledged policy revision yet, or an upgrade started and not finished → `updating`;
//! 6. never checked in → `enrolling`;
//! 7. an unenrollment started → `unenrolling`;
//! 8. `last_checkin_status` `error` / `degraded` (any case; the agent sends `FAILED` →
//!    stored as sent, so `failed` counts as `error`) → `error` / `degraded`;
//! 9. otherwise `online`.
//!
//! Two deliberate additions, both `updating`: an agent whose `upgrade_details` says it is
//! downloading, extracting, ... (any state but `UPG_FAILED`) — Kibana's UI shows those agents
//! as upgrading from the same member; a failed upgrade is reported by [`upgrade_failure`] — and
//! an agent that reports running another policy (`agent_policy_id`) than the one it is assigned
//! (`policy_id`), as after a reassign: Kibana clears the revision on reassign, but the agent's
//! next checkin reports the old policy's revision again, which would show it `online` on a
//! policy it does not run yet.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::time::parse_rfc3339;
use super::Agent;

/// Kibana's `MISSED_INTERVALS_BEFORE_OFFLINE × AGENT_POLLING_THRESHOLD_MS` (12 × 30 s): an
/// agent whose last checkin is older is `offline`.
pub const OFFLINE_AFTER: Duration = Duration::from_secs(12 * 30);

/// Every status Kibana gives an agent (its `AgentStatus` type), lower-case on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentStatus {
    /// Checking in, healthy.
    Online,
    /// Checking in, reporting an error.
    Error,
    /// Checking in, reporting a degraded state.
    Degraded,
    /// Not checked in for [`OFFLINE_AFTER`].
    Offline,
    /// Applying its first policy or upgrading.
    Updating,
    /// Enrolled, never checked in.
    Enrolling,
    /// An UNENROLL was sent and not acknowledged yet.
    Unenrolling,
    /// Not checked in for its policy's inactivity timeout.
    Inactive,
    /// No longer enrolled.
    Unenrolled,
    /// Reported uninstalled by the agent (audit/unenroll).
    Uninstalled,
    /// Reported orphaned by the agent (audit/unenroll).
    Orphaned,
}

impl AgentStatus {
    /// Every status, in the order listings and counts show them.
    pub const ALL: [AgentStatus; 11] = [
        AgentStatus::Online,
        AgentStatus::Error,
        AgentStatus::Degraded,
        AgentStatus::Offline,
        AgentStatus::Updating,
        AgentStatus::Enrolling,
        AgentStatus::Unenrolling,
        AgentStatus::Inactive,
        AgentStatus::Unenrolled,
        AgentStatus::Uninstalled,
        AgentStatus::Orphaned,
    ];

    /// The wire name (`online`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Online => "online",
            AgentStatus::Error => "error",
            AgentStatus::Degraded => "degraded",
            AgentStatus::Offline => "offline",
            AgentStatus::Updating => "updating",
            AgentStatus::Enrolling => "enrolling",
            AgentStatus::Unenrolling => "unenrolling",
            AgentStatus::Inactive => "inactive",
            AgentStatus::Unenrolled => "unenrolled",
            AgentStatus::Uninstalled => "uninstalled",
            AgentStatus::Orphaned => "orphaned",
        }
    }

    /// The status named `name` (case-insensitive), if it is one.
    pub fn parse(name: &str) -> Option<AgentStatus> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(name))
    }

    /// Whether Kibana lists the agent without `showInactive` (everything but inactive,
    /// unenrolled, uninstalled and orphaned).
    pub fn is_active(self) -> bool {
        !matches!(
            self,
            AgentStatus::Inactive
                | AgentStatus::Unenrolled
                | AgentStatus::Uninstalled
                | AgentStatus::Orphaned
        )
    }
}

/// The agent's status at `now`; `inactivity_timeout` is its policy's (`None`: never inactive),
/// `offline_after` the checkin age past which it is offline ([`OFFLINE_AFTER`] by default).
pub fn agent_status(
    agent: &Agent,
    inactivity_timeout: Option<Duration>,
    offline_after: Duration,
    now: SystemTime,
) -> AgentStatus {
    StatusFacts::of(agent).status(inactivity_timeout, offline_after, now)
}

/// What the agent reported in `last_checkin_status`, as far as its status depends on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reported {
    Disconnected,
    Error,
    Degraded,
    Other,
}

/// The members of an agent document its status depends on, digested: [`agent_status`] is
/// `StatusFacts::of(agent).status(..)`, and the management API's listing index keeps these
/// (a few bytes) instead of the document, so a status is computed without decoding it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusFacts {
    active: bool,
    /// Last checkin, else enrolment (`None`: neither parses).
    last_seen: Option<SystemTime>,
    /// `audit_unenrolled_reason` gave this status (uninstalled, orphaned).
    audit: Option<AgentStatus>,
    reported: Reported,
    /// No acknowledged revision, an upgrade under way or another policy run (step 5).
    updating: bool,
    /// Never checked in.
    enrolling: bool,
    /// An unenrollment started.
    unenrolling: bool,
}

impl StatusFacts {
    /// The facts of `agent`.
    pub fn of(agent: &Agent) -> StatusFacts {
        let member = |name: &str| {
            agent
                .other
                .get(name)
                .filter(|v| !v.is_null() && *v != &Value::String(String::new()))
        };
        let reported = agent.last_checkin_status.to_ascii_lowercase();
        let upgrading = member("upgrade_started_at").is_some() && member("upgraded_at").is_none();
        let runs_another_policy =
            !agent.agent_policy_id.is_empty() && agent.agent_policy_id != agent.policy_id;
        StatusFacts {
            active: agent.active,
            last_seen: parse_rfc3339(&agent.last_checkin)
                .or_else(|| parse_rfc3339(&agent.enrolled_at)),
            audit: match agent.audit_unenrolled_reason.as_str() {
                "uninstall" => Some(AgentStatus::Uninstalled),
                "orphaned" => Some(AgentStatus::Orphaned),
                _ => None,
            },
            reported: match reported.as_str() {
                "disconnected" => Reported::Disconnected,
                "error" | "failed" => Reported::Error,
                "degraded" => Reported::Degraded,
                _ => Reported::Other,
            },
            updating: agent.policy_revision_idx == 0
                || upgrading
                || upgrade_in_progress(agent)
                || runs_another_policy,
            enrolling: agent.last_checkin.is_empty(),
            unenrolling: member("unenrollment_started_at").is_some(),
        }
    }

    /// The status at `now` under `inactivity_timeout` (Kibana's order, see the module).
    pub fn status(
        &self,
        inactivity_timeout: Option<Duration>,
        offline_after: Duration,
        now: SystemTime,
    ) -> AgentStatus {
        let older_than = |limit: Duration| {
            self.last_seen
                .is_some_and(|t| now.duration_since(t).unwrap_or_default() > limit)
        };
        if !self.active {
            return AgentStatus::Unenrolled;
        }
        if inactivity_timeout.is_some_and(|limit| !limit.is_zero() && older_than(limit)) {
            return AgentStatus::Inactive;
        }
        if let Some(status) = self.audit {
            return status;
        }
        if older_than(offline_after) || self.reported == Reported::Disconnected {
            return AgentStatus::Offline;
        }
        if self.updating {
            return AgentStatus::Updating;
        }
        if self.enrolling {
            return AgentStatus::Enrolling;
        }
        if self.unenrolling {
            return AgentStatus::Unenrolling;
        }
        match self.reported {
            Reported::Error => AgentStatus::Error,
            Reported::Degraded => AgentStatus::Degraded,
            _ => AgentStatus::Online,
        }
    }
}

/// The `upgrade_details.state` the agent last reported, if any.
pub fn upgrade_state(agent: &Agent) -> Option<&str> {
    agent
        .upgrade_details
        .as_ref()
        .and_then(|d| d.get("state"))
        .and_then(Value::as_str)
}

/// Whether the agent reports an upgrade under way (any `upgrade_details` state but a failure).
fn upgrade_in_progress(agent: &Agent) -> bool {
    upgrade_state(agent).is_some_and(|s| s != "UPG_FAILED")
}

/// The error of a failed upgrade the agent reported (`UPG_FAILED`), if any.
pub fn upgrade_failure(agent: &Agent) -> Option<String> {
    if upgrade_state(agent) != Some("UPG_FAILED") {
        return None;
    }
    let details = agent.upgrade_details.as_ref()?;
    Some(
        details
            .pointer("/metadata/error_msg")
            .and_then(Value::as_str)
            .unwrap_or("the upgrade failed")
            .to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::time::rfc3339_seconds;
    use serde_json::json;

    fn online_agent(now: SystemTime) -> Agent {
        Agent {
            id: "a".into(),
            active: true,
            enrolled_at: rfc3339_seconds(now - Duration::from_secs(60)),
            last_checkin: rfc3339_seconds(now),
            last_checkin_status: "online".into(),
            policy_revision_idx: 1,
            ..Agent::default()
        }
    }

    fn with(mut agent: Agent, members: Value) -> Agent {
        if let Value::Object(m) = members {
            agent.other.extend(m);
        }
        agent
    }

    #[test]
    fn each_status_in_kibanas_order() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let status =
            |a: &Agent| agent_status(a, Some(Duration::from_secs(3600)), OFFLINE_AFTER, now);
        let a = online_agent(now);
        assert_eq!(status(&a), AgentStatus::Online);
        for (sent, want) in [
            ("DEGRADED", AgentStatus::Degraded),
            ("degraded", AgentStatus::Degraded),
            ("FAILED", AgentStatus::Error),
            ("error", AgentStatus::Error),
            ("STARTING", AgentStatus::Online),
        ] {
            let b = Agent {
                last_checkin_status: sent.into(),
                ..a.clone()
            };
            assert_eq!(status(&b), want, "{sent}");
        }
        let never = Agent {
            last_checkin: String::new(),
            ..a.clone()
        };
        assert_eq!(status(&never), AgentStatus::Enrolling);
        let first_policy = Agent {
            policy_revision_idx: 0,
            ..a.clone()
        };
        assert_eq!(status(&first_policy), AgentStatus::Updating);
        let upgrading = with(
            a.clone(),
            json!({"upgrade_started_at": "2027-01-01T00:00:00Z"}),
        );
        assert_eq!(status(&upgrading), AgentStatus::Updating);
        let upgraded = with(
            upgrading.clone(),
            json!({"upgraded_at": "2027-01-01T00:01:00Z"}),
        );
        assert_eq!(status(&upgraded), AgentStatus::Online);
        let downloading = Agent {
            upgrade_details: Some(json!({"state": "UPG_DOWNLOADING", "target_version": "9.3.0"})),
            ..a.clone()
        };
        assert_eq!(status(&downloading), AgentStatus::Updating);
        let failed = Agent {
            upgrade_details: Some(
                json!({"state": "UPG_FAILED", "metadata": {"error_msg": "no space left"}}),
            ),
            ..a.clone()
        };
        assert_eq!(status(&failed), AgentStatus::Online);
        assert_eq!(upgrade_failure(&failed).as_deref(), Some("no space left"));
        assert_eq!(upgrade_failure(&downloading), None);
        let reassigned = Agent {
            policy_id: "new".into(),
            agent_policy_id: "old".into(),
            ..a.clone()
        };
        assert_eq!(status(&reassigned), AgentStatus::Updating);
        let moved = Agent {
            agent_policy_id: "new".into(),
            ..reassigned
        };
        assert_eq!(status(&moved), AgentStatus::Online);
        let unenrolling = with(
            a.clone(),
            json!({"unenrollment_started_at": "2027-01-01T00:00:00Z"}),
        );
        assert_eq!(status(&unenrolling), AgentStatus::Unenrolling);
        let offline = Agent {
            last_checkin: rfc3339_seconds(now - OFFLINE_AFTER - Duration::from_secs(1)),
            ..a.clone()
        };
        assert_eq!(status(&offline), AgentStatus::Offline);
        let just_in_time = Agent {
            last_checkin: rfc3339_seconds(now - OFFLINE_AFTER),
            ..a.clone()
        };
        assert_eq!(status(&just_in_time), AgentStatus::Online);
        let disconnected = Agent {
            last_checkin_status: "disconnected".into(),
            ..a.clone()
        };
        assert_eq!(status(&disconnected), AgentStatus::Offline);
        let inactive = Agent {
            last_checkin: rfc3339_seconds(now - Duration::from_secs(3601)),
            ..a.clone()
        };
        assert_eq!(status(&inactive), AgentStatus::Inactive);
        assert_eq!(
            agent_status(&inactive, None, OFFLINE_AFTER, now),
            AgentStatus::Offline,
            "no timeout, never inactive"
        );
        let uninstalled = Agent {
            audit_unenrolled_reason: "uninstall".into(),
            ..a.clone()
        };
        assert_eq!(status(&uninstalled), AgentStatus::Uninstalled);
        let orphaned = Agent {
            audit_unenrolled_reason: "orphaned".into(),
            ..a.clone()
        };
        assert_eq!(status(&orphaned), AgentStatus::Orphaned);
        // Inactivity is tested before the audit reason, the audit reason before offline.
        let old_orphan = Agent {
            last_checkin: rfc3339_seconds(now - Duration::from_secs(3601)),
            ..orphaned.clone()
        };
        assert_eq!(status(&old_orphan), AgentStatus::Inactive);
        let gone = Agent {
            active: false,
            ..orphaned
        };
        assert_eq!(status(&gone), AgentStatus::Unenrolled);
        // Never checked in: the enrolment time counts for offline and inactive.
        let stale_enrolment = Agent {
            last_checkin: String::new(),
            enrolled_at: rfc3339_seconds(now - Duration::from_secs(600)),
            ..a
        };
        assert_eq!(status(&stale_enrolment), AgentStatus::Offline);
        // The operator's threshold replaces Kibana's.
        let a_minute_ago = Agent {
            last_checkin: rfc3339_seconds(now - Duration::from_secs(61)),
            ..online_agent(now)
        };
        assert_eq!(status(&a_minute_ago), AgentStatus::Online);
        let short = Duration::from_secs(60);
        assert_eq!(
            agent_status(&a_minute_ago, None, short, now),
            AgentStatus::Offline
        );
    }

    #[test]
    fn names_round_trip() {
        for s in AgentStatus::ALL {
            assert_eq!(AgentStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), json!(s.as_str()));
        }
        assert_eq!(AgentStatus::parse("ONLINE"), Some(AgentStatus::Online));
        assert_eq!(AgentStatus::parse("healthy"), None);
        assert!(!AgentStatus::Inactive.is_active());
        assert!(AgentStatus::Offline.is_active());
    }
}
