//! What agent listings read, and how they filter and sort: the same code over two sources.
//! Embedded mode lists from the store's in-memory summaries ([`Admin::agent_summaries`], one
//! per agent, see `backend::local::listing`) and decodes only the shown page's documents;
//! without them (or in the tests that compare the two) every document is decoded. Either way
//! each agent becomes a [`Row`] of borrowed members, and everything after that is shared.
//!
//! Agents with checkin state the event loop has not written yet (`pending_checkins`) are read
//! from the store and merged, as the single agent view does, in both sources.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::admin::{with_pending, Admin, AdminRequest, Failure};
use super::query::{Kuery, Params};
use crate::model::agent_status::StatusFacts;
use crate::model::agent_summary::AgentSummary;
use crate::model::{agent_status, Agent, AgentStatus};
use crate::transform::output_check::output_problems;

/// Kibana's default `inactivity_timeout` for agent policies (14 days), used when a policy file
/// sets none.
pub const DEFAULT_INACTIVITY_TIMEOUT: Duration = Duration::from_secs(1_209_600);

/// What the agent views need to know about each policy, and the offline threshold.
pub struct PolicyFacts {
    /// Inactivity timeout by policy id (`None`: 0 in the policy, never inactive).
    inactivity: HashMap<String, Option<Duration>>,
    /// Output problems by policy id ([`crate::transform::output_check`]).
    problems: HashMap<String, Vec<String>>,
    /// Checkin age past which an agent is offline (`--agent-offline-after`).
    offline_after: Duration,
}

impl Default for PolicyFacts {
    /// No policy known, and Kibana's offline threshold.
    fn default() -> Self {
        PolicyFacts {
            inactivity: HashMap::new(),
            problems: HashMap::new(),
            offline_after: crate::model::agent_status::OFFLINE_AFTER,
        }
    }
}

impl PolicyFacts {
    /// The facts of the store's latest policies.
    pub(super) fn read(admin: &dyn Admin) -> Result<PolicyFacts, Failure> {
        let mut facts = PolicyFacts {
            offline_after: admin.offline_after(),
            ..PolicyFacts::default()
        };
        for p in admin.store().latest_policies()? {
            facts
                .inactivity
                .insert(p.policy_id.clone(), inactivity_timeout(&p.data));
            facts
                .problems
                .insert(p.policy_id.clone(), output_problems(&p.data));
        }
        Ok(facts)
    }

    /// The output problems of policy `id`, if it has any.
    pub fn problems(&self, id: &str) -> Option<&Vec<String>> {
        self.problems.get(id)
    }

    /// The agent's status at `now` under its policy's inactivity timeout.
    pub fn status(&self, agent: &Agent, now: SystemTime) -> AgentStatus {
        agent_status(
            agent,
            self.timeout(&agent.policy_id),
            self.offline_after,
            now,
        )
    }

    /// [`Self::status`] from an agent's digested facts and its policy id.
    pub fn status_of(&self, facts: &StatusFacts, policy_id: &str, now: SystemTime) -> AgentStatus {
        facts.status(self.timeout(policy_id), self.offline_after, now)
    }

    fn timeout(&self, policy_id: &str) -> Option<Duration> {
        self.inactivity
            .get(policy_id)
            .copied()
            .unwrap_or(Some(DEFAULT_INACTIVITY_TIMEOUT))
    }
}

/// A policy's `inactivity_timeout` (seconds; Kibana's setting, kept in the policy file): 0 is
/// "never", absent is Kibana's default.
pub fn inactivity_timeout(policy: &Value) -> Option<Duration> {
    match policy.get("inactivity_timeout").and_then(Value::as_u64) {
        Some(0) => None,
        Some(secs) => Some(Duration::from_secs(secs)),
        None => Some(DEFAULT_INACTIVITY_TIMEOUT),
    }
}

/// Agents by status right now (the monitoring endpoint's and the status history's figure);
/// every status present.
pub fn status_counts(
    admin: &dyn Admin,
    now: SystemTime,
) -> Result<BTreeMap<&'static str, usize>, String> {
    let facts = PolicyFacts::read(admin).map_err(|_| "the store cannot answer".to_owned())?;
    let source = Source::read(admin, None).map_err(|_| "the store cannot answer".to_owned())?;
    Ok(counts(&source.rows(&facts, now)))
}

/// Active agents per policy.
pub(super) fn active_per_policy(admin: &dyn Admin) -> Result<HashMap<String, usize>, Failure> {
    let facts = PolicyFacts::default();
    let source = Source::read(admin, None)?;
    let mut per: HashMap<String, usize> = HashMap::new();
    for row in source.rows(&facts, SystemTime::UNIX_EPOCH) {
        if row.active {
            *per.entry(row.policy_id.to_owned()).or_insert(0) += 1;
        }
    }
    Ok(per)
}

/// One agent as a listing reads it.
pub(super) struct Row<'a> {
    pub id: &'a str,
    pub status: AgentStatus,
    pub active: bool,
    pub policy_id: &'a str,
    pub revision: i64,
    pub tags: &'a [String],
    pub version: &'a str,
    pub hostname: &'a str,
    pub host_name: &'a str,
    pub last_checkin_status: &'a str,
    pub agent_type: &'a str,
    pub last_checkin: &'a str,
    pub enrolled_at: &'a str,
    pub action_seq: i64,
    /// The document, when the source decoded it.
    pub doc: Option<&'a Agent>,
}

fn host<'a>(agent: &'a Agent, member: &str) -> &'a str {
    agent
        .local_metadata
        .as_ref()
        .and_then(|m| m.pointer(member))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

impl<'a> Row<'a> {
    fn of_agent(a: &'a Agent, facts: &PolicyFacts, now: SystemTime) -> Row<'a> {
        Row {
            id: &a.id,
            status: facts.status(a, now),
            active: a.active,
            policy_id: &a.policy_id,
            revision: a.policy_revision_idx,
            tags: &a.tags,
            version: a.version(),
            hostname: host(a, "/host/hostname"),
            host_name: host(a, "/host/name"),
            last_checkin_status: &a.last_checkin_status,
            agent_type: &a.agent_type,
            last_checkin: &a.last_checkin,
            enrolled_at: &a.enrolled_at,
            action_seq: a.action_seq(),
            doc: Some(a),
        }
    }

    fn of_summary(s: &'a AgentSummary, facts: &PolicyFacts, now: SystemTime) -> Row<'a> {
        Row {
            id: s.id(),
            status: facts.status_of(&s.facts, s.policy_id(), now),
            active: s.active,
            policy_id: s.policy_id(),
            revision: s.policy_revision_idx,
            tags: &s.tags,
            version: s.version(),
            hostname: s.hostname(),
            host_name: s.host_name(),
            last_checkin_status: s.last_checkin_status(),
            agent_type: s.agent_type(),
            last_checkin: s.last_checkin(),
            enrolled_at: s.enrolled_at(),
            action_seq: s.action_seq,
            doc: None,
        }
    }

    /// The values of a kuery field ([`super::query::KUERY_FIELDS`]).
    fn field_values(&self, field: &str) -> Vec<String> {
        let one = |s: &str| {
            if s.is_empty() {
                vec![]
            } else {
                vec![s.to_owned()]
            }
        };
        match field {
            "status" => vec![self.status.as_str().to_owned()],
            "policy_id" => one(self.policy_id),
            "policy_revision_idx" => vec![self.revision.to_string()],
            "tags" => self.tags.to_vec(),
            "agent.id" => one(self.id),
            "agent.version" => one(self.version),
            "local_metadata.host.hostname" => one(self.hostname),
            "local_metadata.host.name" => one(self.host_name),
            "last_checkin_status" => one(self.last_checkin_status),
            "type" => one(self.agent_type),
            _ => vec![],
        }
    }
}

/// The agents a listing reads from.
pub(super) enum Source {
    /// Every document, decoded (pending checkin state merged).
    Docs(Vec<Agent>),
    /// The store's summaries, and the documents of the agents with pending checkin state.
    Index {
        summaries: Arc<Vec<AgentSummary>>,
        /// By id.
        pending: Vec<Agent>,
    },
}

impl Source {
    /// The summaries when the admin keeps them, else every document.
    pub fn read(admin: &dyn Admin, req: Option<&AdminRequest>) -> Result<Source, Failure> {
        let none = Default::default();
        let pending = req.map_or(&none, |r| &r.pending_checkins);
        match admin.agent_summaries()? {
            Some(summaries) => {
                let mut docs = Vec::new();
                for id in pending.keys() {
                    if let Some(agent) = admin.store().agent(id)? {
                        docs.push(with_pending(agent, pending));
                    }
                }
                docs.sort_by(|a, b| a.id.cmp(&b.id));
                Ok(Source::Index {
                    summaries,
                    pending: docs,
                })
            }
            None => Self::docs(admin, req),
        }
    }

    /// Every document, decoded.
    pub fn docs(admin: &dyn Admin, req: Option<&AdminRequest>) -> Result<Source, Failure> {
        let none = Default::default();
        let pending = req.map_or(&none, |r| &r.pending_checkins);
        Ok(Source::Docs(
            admin
                .list_agents()?
                .into_iter()
                .map(|a| with_pending(a, pending))
                .collect(),
        ))
    }

    /// One row per agent.
    pub fn rows<'a>(&'a self, facts: &PolicyFacts, now: SystemTime) -> Vec<Row<'a>> {
        match self {
            Source::Docs(docs) => docs.iter().map(|a| Row::of_agent(a, facts, now)).collect(),
            Source::Index { summaries, pending } => {
                let mut rows: Vec<Row<'a>> = Vec::with_capacity(summaries.len());
                rows.extend(
                    summaries
                        .iter()
                        .filter(|s| {
                            pending
                                .binary_search_by(|p| p.id.as_str().cmp(s.id()))
                                .is_err()
                        })
                        .map(|s| Row::of_summary(s, facts, now)),
                );
                rows.extend(pending.iter().map(|a| Row::of_agent(a, facts, now)));
                rows
            }
        }
    }

    /// The document of a row (read from the store when the source has only its summary).
    pub fn agent(
        &self,
        admin: &dyn Admin,
        req: Option<&AdminRequest>,
        row: &Row<'_>,
    ) -> Result<Option<Agent>, Failure> {
        if let Some(doc) = row.doc {
            return Ok(Some(doc.clone()));
        }
        let none = Default::default();
        let pending = req.map_or(&none, |r| &r.pending_checkins);
        Ok(admin
            .store()
            .agent(row.id)?
            .map(|a| with_pending(a, pending)))
    }
}

/// The rows a listing's parameters select (`kuery`, `showInactive`, `policyId`, `search`).
pub(super) fn select<'a>(rows: Vec<Row<'a>>, params: &Params) -> Result<Vec<Row<'a>>, Failure> {
    let kuery = match params.get("kuery").filter(|k| !k.trim().is_empty()) {
        Some(k) => Some(Kuery::parse(k).map_err(Failure::Invalid)?),
        None => None,
    };
    let show_inactive = params.flag("showInactive").map_err(Failure::Invalid)?;
    let policy = params.get("policyId").filter(|p| !p.is_empty());
    let search = params.get("search").map(str::to_lowercase);
    Ok(rows
        .into_iter()
        .filter(|r| show_inactive || r.status.is_active())
        .filter(|r| policy.is_none_or(|p| r.policy_id == p))
        .filter(|r| {
            kuery
                .as_ref()
                .is_none_or(|k| k.matches(&|f| r.field_values(f)))
        })
        .filter(|r| {
            search.as_ref().is_none_or(|text| {
                r.id.to_lowercase().contains(text)
                    || (!r.hostname.is_empty() && r.hostname.to_lowercase().contains(text))
            })
        })
        .collect())
}

/// The fields `sortField` accepts.
const SORT_FIELDS: [&str; 6] = [
    "enrolled_at",
    "last_checkin",
    "status",
    "policy_id",
    "agent.version",
    "local_metadata.host.hostname",
];

/// Sorts by Kibana's `sortField` (`enrolled_at` by default) and `sortOrder` (`desc`), the
/// agent id breaking ties.
pub(super) fn sort<'a>(rows: &mut [Row<'a>], params: &Params) -> Result<(), Failure> {
    let field = params.get("sortField").unwrap_or("enrolled_at");
    if !SORT_FIELDS.contains(&field) {
        return Err(Failure::Invalid(format!(
            "sortField {field:?} is not one fleet-edge sorts by"
        )));
    }
    let descending = match params.get("sortOrder").unwrap_or("desc") {
        "desc" => true,
        "asc" => false,
        other => {
            return Err(Failure::Invalid(format!(
                "sortOrder must be asc or desc, not {other:?}"
            )))
        }
    };
    let key = |r: &Row<'a>| -> &'a str {
        match field {
            "last_checkin" => r.last_checkin,
            "status" => r.status.as_str(),
            "policy_id" => r.policy_id,
            "agent.version" => r.version,
            "local_metadata.host.hostname" => r.hostname,
            _ => r.enrolled_at,
        }
    };
    rows.sort_unstable_by(|a, b| {
        let order = (key(a), a.id).cmp(&(key(b), b.id));
        if descending {
            order.reverse()
        } else {
            order
        }
    });
    Ok(())
}

/// Counts by status: each of the eleven, as a map.
pub(super) fn counts(rows: &[Row<'_>]) -> BTreeMap<&'static str, usize> {
    let mut by: BTreeMap<&'static str, usize> =
        AgentStatus::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    for r in rows {
        *by.entry(r.status.as_str()).or_default() += 1;
    }
    by
}

#[cfg(test)]
#[path = "listing_tests.rs"]
mod tests;
