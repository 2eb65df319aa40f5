//! An agent as the management API's listings look at it: what the filters (`kuery`, `search`,
//! `showInactive`, `policyId`), the sort fields and the status counts read, and nothing else.
//! The embedded store keeps one per agent in memory (`backend::local::listing`) so that a page
//! of 10,000 agents is a filter and a sort over these, decoding only the page's documents.
//!
//! Small on purpose: the strings live in one buffer (one allocation per agent, tags apart), the
//! status in [`StatusFacts`] (a few bytes instead of the members it is computed from).

use super::agent_status::StatusFacts;
use super::Agent;
use serde_json::Value;

/// The text members, in the order of the buffer.
#[derive(Clone, Copy)]
enum Text {
    Id,
    PolicyId,
    Version,
    Hostname,
    HostName,
    LastCheckinStatus,
    AgentType,
    LastCheckin,
    EnrolledAt,
}

const TEXTS: usize = 9;

/// One agent, digested for listings.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentSummary {
    /// The text members one after the other; `ends[i]` is where member `i` ends.
    text: Box<str>,
    ends: [u32; TEXTS],
    /// `tags`, as stored.
    pub tags: Box<[String]>,
    /// What its status is computed from.
    pub facts: StatusFacts,
    /// `policy_revision_idx`.
    pub policy_revision_idx: i64,
    /// The last delivered action sequence number ([`Agent::action_seq`]).
    pub action_seq: i64,
    /// `active`.
    pub active: bool,
}

impl AgentSummary {
    /// The summary of `agent`.
    pub fn of(agent: &Agent) -> AgentSummary {
        let host = |name: &str| {
            agent
                .local_metadata
                .as_ref()
                .and_then(|m| m.get("host"))
                .and_then(|h| h.get(name))
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        let members: [&str; TEXTS] = [
            &agent.id,
            &agent.policy_id,
            agent.version(),
            host("hostname"),
            host("name"),
            &agent.last_checkin_status,
            &agent.agent_type,
            &agent.last_checkin,
            &agent.enrolled_at,
        ];
        let mut text = String::with_capacity(members.iter().map(|m| m.len()).sum());
        let mut ends = [0u32; TEXTS];
        for (end, member) in ends.iter_mut().zip(members) {
            text.push_str(member);
            // A document over 4 GiB of text cannot be stored; saturate rather than wrap.
            *end = u32::try_from(text.len()).unwrap_or(u32::MAX);
        }
        AgentSummary {
            text: text.into_boxed_str(),
            ends,
            tags: agent.tags.clone().into_boxed_slice(),
            facts: StatusFacts::of(agent),
            policy_revision_idx: agent.policy_revision_idx,
            action_seq: agent.action_seq(),
            active: agent.active,
        }
    }

    fn get(&self, which: Text) -> &str {
        let i = which as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] } as usize;
        self.text
            .get(start..self.ends[i] as usize)
            .unwrap_or_default()
    }

    /// The agent id.
    pub fn id(&self) -> &str {
        self.get(Text::Id)
    }
    /// `policy_id`.
    pub fn policy_id(&self) -> &str {
        self.get(Text::PolicyId)
    }
    /// `agent.version`.
    pub fn version(&self) -> &str {
        self.get(Text::Version)
    }
    /// `local_metadata.host.hostname`.
    pub fn hostname(&self) -> &str {
        self.get(Text::Hostname)
    }
    /// `local_metadata.host.name`.
    pub fn host_name(&self) -> &str {
        self.get(Text::HostName)
    }
    /// `last_checkin_status`, as sent.
    pub fn last_checkin_status(&self) -> &str {
        self.get(Text::LastCheckinStatus)
    }
    /// `type`.
    pub fn agent_type(&self) -> &str {
        self.get(Text::AgentType)
    }
    /// `last_checkin`.
    pub fn last_checkin(&self) -> &str {
        self.get(Text::LastCheckin)
    }
    /// `enrolled_at`.
    pub fn enrolled_at(&self) -> &str {
        self.get(Text::EnrolledAt)
    }

    /// The bytes this summary takes: itself and what it owns on the heap (allocator overhead
    /// not counted).
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.text.len()
            + self.tags.len() * std::mem::size_of::<String>()
            + self.tags.iter().map(|t| t.capacity()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_read_back() {
        let agent: Agent = serde_json::from_value(serde_json::json!({
            "active": true, "agent": {"id": "a1", "version": "9.2.1"}, "type": "PERMANENT",
            "enrolled_at": "2026-05-01T10:11:12Z", "policy_id": "p1", "policy_revision_idx": 3,
            "last_checkin": "2026-05-01T10:12:00Z", "last_checkin_status": "DEGRADED",
            "local_metadata": {"host": {"hostname": "web-1", "name": "Web 1"}},
            "tags": ["a", "b"], "action_seq_no": [7]
        }))
        .unwrap();
        let agent = Agent {
            id: "a1".into(),
            ..agent
        };
        let s = AgentSummary::of(&agent);
        assert_eq!(s.id(), "a1");
        assert_eq!(s.policy_id(), "p1");
        assert_eq!(s.version(), "9.2.1");
        assert_eq!(s.hostname(), "web-1");
        assert_eq!(s.host_name(), "Web 1");
        assert_eq!(s.last_checkin_status(), "DEGRADED");
        assert_eq!(s.agent_type(), "PERMANENT");
        assert_eq!(s.last_checkin(), "2026-05-01T10:12:00Z");
        assert_eq!(s.enrolled_at(), "2026-05-01T10:11:12Z");
        assert_eq!(&*s.tags, ["a", "b"]);
        assert_eq!(
            (s.policy_revision_idx, s.action_seq, s.active),
            (3, 7, true)
        );
        assert_eq!(s.facts, StatusFacts::of(&agent));
        let empty = AgentSummary::of(&Agent::default());
        assert_eq!(
            (empty.id(), empty.hostname(), empty.enrolled_at()),
            ("", "", "")
        );
    }
}
