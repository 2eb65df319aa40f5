//! Long-poll state of the event loop (fleet-protocol.md §3.2-§3.6, §6.3), sans-IO:
//! * [`PolicyCache`]: the newest prepared revision of every policy;
//! * [`Waiters`]: parked checkins indexed by agent and by policy, so a new revision wakes exactly
//!   its policy's waiters and a new action exactly its agents (O(woken));
//! * the rules: which revision a checkin subscribes with, how long it is held, what it answers.
//!
//! A parked checkin holds only what waking it needs: agent id, policy id, subscribed revision and
//! whether its output keys are current for the cached revision; never a buffer or the policy.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::backend::interface::CheckinBody;
use crate::backend::ops::checkin::REPEATED;
use crate::model::Agent;
use crate::transform::prepared_policy::PreparedPolicy;

/// The newest prepared revision of every known policy.
#[derive(Debug, Default)]
pub struct PolicyCache {
    policies: HashMap<String, Arc<PreparedPolicy>>,
}

impl PolicyCache {
    /// Installs a revision if it is newer than the cached one; returns whether it was.
    pub fn install(&mut self, policy: Arc<PreparedPolicy>) -> bool {
        match self.policies.get(&policy.policy_id) {
            Some(current) if current.revision >= policy.revision => false,
            _ => {
                self.policies.insert(policy.policy_id.clone(), policy);
                true
            }
        }
    }

    /// The cached revision of a policy.
    pub fn get(&self, policy_id: &str) -> Option<&Arc<PreparedPolicy>> {
        self.policies.get(policy_id)
    }

    /// The policies that offer a remote configuration to OpAMP collectors.
    pub fn opamp_configs(&self) -> Vec<(String, Arc<crate::opamp::remote_config::RemoteConfig>)> {
        self.policies
            .values()
            .filter_map(|p| Some((p.policy_id.clone(), Arc::clone(p.opamp.as_ref()?))))
            .collect()
    }

    /// Number of cached policies.
    pub fn len(&self) -> usize {
        self.policies.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }
}

/// §3.6: the revision a checkin subscribes with; the agent gets any newer revision at once.
pub fn subscription_revision(agent: &Agent, body: &CheckinBody, cache: &PolicyCache) -> i64 {
    let mut revision = agent.policy_revision_idx;
    if let (Some(pid), Some(rev)) = (&body.agent_policy_id, body.policy_revision_idx) {
        let newest = cache.get(&agent.policy_id).map_or(i64::MAX, |p| p.revision);
        revision = if *pid != agent.policy_id || rev > newest {
            0
        } else {
            rev
        };
    }
    // An output whose key was lost (empty api_key) forces a fresh POLICY_CHANGE (§3.2 step 7).
    if agent.outputs.values().any(|o| o.api_key.is_empty()) {
        revision = 0;
    }
    revision
}

/// Long-poll timing settings (`server.timeouts.checkin_*`).
#[derive(Clone, Copy, Debug)]
pub struct PollSettings {
    /// Default hold time.
    pub long_poll: Duration,
    /// Random subtraction, uniform in `[0, jitter)`.
    pub jitter: Duration,
    /// Cap for a client `poll_timeout`.
    pub max_poll: Duration,
}

/// §3.3: how long to hold a checkin, given the client's `poll_timeout`, the setup time already
/// spent and a uniform random number `random` in `[0, 1)`.
pub fn poll_duration(
    settings: &PollSettings,
    requested: Option<Duration>,
    setup: Duration,
    random: f64,
) -> Duration {
    let mut poll = match requested {
        Some(t) => t
            .saturating_sub(Duration::from_secs(120))
            .min(settings.max_poll)
            .max(Duration::from_secs(60)),
        None => settings.long_poll,
    };
    poll = if setup >= poll {
        Duration::from_millis(1)
    } else {
        poll - setup
    };
    let jitter = settings.jitter.mul_f64(random.clamp(0.0, 1.0));
    if jitter < poll {
        poll -= jitter;
    }
    poll
}

/// An output key as the agent document records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownKey {
    /// `id:secret`.
    pub api_key: String,
    /// The permissions it was made for.
    pub permissions_hash: String,
    /// The remote cluster configuration it was made on (`""`: the store's cluster).
    pub remote_config_hash: String,
}

/// One parked checkin.
#[derive(Debug, Clone, PartialEq)]
pub struct Waiter {
    /// Agent id: one allocation shared with the by-agent index and the engine's checkin wait
    /// (a parked agent held four copies of it before; issue 21).
    pub agent_id: Arc<str>,
    /// Assigned policy: [`Waiters::park`] shares the by-policy index's allocation, so a parked
    /// agent holds none of its own.
    pub policy_id: Arc<str>,
    /// Subscribed revision: a newer one wakes it.
    pub revision: i64,
    /// Position in the action sequence: live actions at or below it were already delivered.
    pub position: i64,
    /// Output name and what the agent document says of its key, so a new revision with
    /// unchanged permissions (and remote cluster) is rendered without a store round trip. A
    /// boxed slice (one allocation of 96 bytes an output, usually one): a `BTreeMap` node of
    /// `(String, KnownKey)` is about 1,070 bytes however few keys it holds (issue 21).
    pub keys: Box<[(String, KnownKey)]>,
    /// The checkin-state members a refresh of the parked checkin writes again
    /// (`CheckinStart::repeat`).
    pub repeat: Repeat,
}

/// The checkin-state members a parked checkin's refresh writes again ([`REPEATED`]), kept as one
/// short text: a digit saying which of the four are present, then their values as a JSON array
/// (`f["online","Running",null,0]`, ~30 bytes), without the member names a JSON object repeated
/// for every parked agent (~106 bytes; issue 21). Members outside `REPEATED` (none today) are
/// kept as a JSON object instead. A `Map` (a B-tree) would hold a node of about 640 bytes and an
/// allocation per key. Shared ([`Repeat::share`]): agents reporting the same state hold one
/// allocation between them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Repeat(Arc<str>);

impl Repeat {
    /// Keeps `members`.
    pub fn new(members: &Map<String, Value>) -> Self {
        if members.is_empty() {
            return Self::default();
        }
        if members.keys().any(|k| !REPEATED.contains(&k.as_str())) {
            return Self(Arc::from(
                serde_json::to_string(members).unwrap_or_default(),
            ));
        }
        let mut present = 0u32;
        let mut values = Vec::with_capacity(members.len());
        for (bit, name) in REPEATED.iter().enumerate() {
            if let Some(value) = members.get(*name) {
                present |= 1 << bit;
                values.push(value);
            }
        }
        let mut text = char::from_digit(present, 16).unwrap_or('0').to_string();
        text.push_str(&serde_json::to_string(&values).unwrap_or_default());
        Self(Arc::from(text))
    }

    /// `self`, holding `last`'s allocation when both keep the same members; `last` becomes
    /// `self` otherwise. Parked agents mostly report the same state, so keeping the last one
    /// made shares it among nearly all of them (bounded: one extra reference).
    pub fn share(self, last: &mut Repeat) -> Repeat {
        if self != *last {
            *last = self;
        }
        last.clone()
    }

    /// The members kept.
    pub fn members(&self) -> Map<String, Value> {
        if self.0.is_empty() {
            return Map::new();
        }
        if self.0.starts_with('{') {
            return serde_json::from_str(&self.0).unwrap_or_default();
        }
        let mut chars = self.0.chars();
        let present = chars.next().and_then(|c| c.to_digit(16)).unwrap_or(0);
        let values: Vec<Value> = serde_json::from_str(chars.as_str()).unwrap_or_default();
        let mut values = values.into_iter();
        let mut members = Map::new();
        for (bit, name) in REPEATED.iter().enumerate() {
            if present & (1 << bit) != 0 {
                if let Some(value) = values.next() {
                    members.insert((*name).to_owned(), value);
                }
            }
        }
        members
    }
}

impl Waiter {
    /// Output keys for `policy` if all are current: name → `id:secret`.
    pub fn current_keys(&self, policy: &PreparedPolicy) -> Option<BTreeMap<String, String>> {
        policy
            .es_outputs
            .iter()
            .map(
                |o| match self.keys.iter().find(|(name, _)| *name == o.name) {
                    Some((_, k))
                        if !k.api_key.is_empty()
                            && k.permissions_hash == o.hash
                            && k.remote_config_hash == o.remote_config_hash() =>
                    {
                        Some((o.name.clone(), k.api_key.clone()))
                    }
                    _ => None,
                },
            )
            .collect()
    }

    /// The waiter for `agent` subscribed at `revision`, at `position` in the action sequence.
    pub fn for_agent(agent: &Agent, revision: i64, position: i64) -> Self {
        Self {
            agent_id: Arc::from(agent.id.as_str()),
            policy_id: Arc::from(agent.policy_id.as_str()),
            revision,
            position,
            keys: agent
                .outputs
                .iter()
                .map(|(name, k)| {
                    (
                        name.clone(),
                        KnownKey {
                            api_key: k.api_key.clone(),
                            permissions_hash: k.permissions_hash.clone(),
                            remote_config_hash: k.remote_config_hash.clone(),
                        },
                    )
                })
                .collect(),
            repeat: Repeat::default(),
        }
    }
}

/// The index of parked checkins, keyed by the loop's connection key `K`: by agent and by
/// policy. The [`Waiter`]s themselves are kept by the caller (the engine's boxed in-flight
/// record, which every parked checkin has anyway): a table of its own cost a ~100-byte slot
/// times the table's slack for every parked agent (issue 21).
#[derive(Debug)]
pub struct Waiters<K: Hash + Eq + Copy> {
    by_agent: HashMap<Arc<str>, K>,
    by_policy: HashMap<Arc<str>, HashSet<K>>,
}

impl<K: Hash + Eq + Copy> Default for Waiters<K> {
    fn default() -> Self {
        Self {
            by_agent: HashMap::new(),
            by_policy: HashMap::new(),
        }
    }
}

impl<K: Hash + Eq + Copy> Waiters<K> {
    /// Indexes `waiter`, parked under `key`; its policy id becomes the index's shared copy. An
    /// older park of the same agent is returned: the caller unparks it ([`Self::remove`]) and
    /// answers it.
    pub fn park(&mut self, key: K, waiter: &mut Waiter) -> Option<K> {
        let previous = self.by_agent.insert(Arc::clone(&waiter.agent_id), key);
        let previous = previous.filter(|p| *p != key);
        match self.by_policy.get_key_value(&*waiter.policy_id) {
            // The index's copy of the policy id becomes the waiter's (the waiter's own is freed).
            Some((shared, _)) => waiter.policy_id = Arc::clone(shared),
            None => {
                self.by_policy
                    .insert(Arc::clone(&waiter.policy_id), HashSet::new());
            }
        }
        if let Some(set) = self.by_policy.get_mut(&*waiter.policy_id) {
            set.insert(key);
        }
        previous
    }

    /// Unparks `key`, whose waiter is `waiter`.
    pub fn remove(&mut self, key: K, waiter: &Waiter) {
        if self.by_agent.get(&*waiter.agent_id) == Some(&key) {
            self.by_agent.remove(&*waiter.agent_id);
        }
        if let Some(set) = self.by_policy.get_mut(&*waiter.policy_id) {
            set.remove(&key);
            if set.is_empty() {
                self.by_policy.remove(&*waiter.policy_id);
            }
        }
    }

    /// The parked checkin of an agent.
    pub fn of_agent(&self, agent_id: &str) -> Option<K> {
        self.by_agent.get(agent_id).copied()
    }

    /// Up to `limit` keys parked on `policy_id` for which `behind` holds (their waiter is
    /// subscribed below the new revision); the caller unparks them.
    pub fn behind(&self, policy_id: &str, limit: usize, behind: impl Fn(K) -> bool) -> Vec<K> {
        self.by_policy
            .get(policy_id)
            .map(|set| {
                set.iter()
                    .copied()
                    .filter(|k| behind(*k))
                    .take(limit)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The agents parked right now (the index's shared copies of their ids).
    pub fn agents(&self) -> impl Iterator<Item = &Arc<str>> {
        self.by_agent.keys()
    }

    /// Every parked key (for shutdown).
    pub fn keys(&self) -> Vec<K> {
        self.by_agent.values().copied().collect()
    }

    /// Whether `key` is indexed.
    pub fn contains(&self, key: K) -> bool {
        self.by_policy.values().any(|set| set.contains(&key))
    }

    /// Number parked.
    pub fn len(&self) -> usize {
        self.by_agent.len()
    }

    /// True when none is parked.
    pub fn is_empty(&self) -> bool {
        self.by_agent.is_empty()
    }
}

/// `{"ack_token":"<token>","action":"checkin","actions":[...]}` for ordinary actions.
pub fn actions_body(ack_token: &str, actions: &[Value]) -> Vec<u8> {
    let mut body = serde_json::Map::new();
    body.insert("ack_token".into(), Value::from(ack_token));
    body.insert("action".into(), Value::from("checkin"));
    if !actions.is_empty() {
        body.insert("actions".into(), Value::Array(actions.to_vec()));
    }
    serde_json::to_vec(&Value::Object(body)).unwrap_or_default()
}

/// The answer of a long poll that ends with nothing to deliver.
pub fn empty_body() -> Vec<u8> {
    actions_body("", &[])
}

/// A POLICY_CHANGE-only answer for `agent_id` (ack token `""`: the policy action is not part of
/// the action sequence).
pub fn policy_change_body(
    policy: &PreparedPolicy,
    agent_id: &str,
    keys: &BTreeMap<String, String>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(POLICY_CHANGE_OPEN);
    policy.render_action(agent_id, keys, &mut out);
    out.extend_from_slice(POLICY_CHANGE_CLOSE);
    out
}

const POLICY_CHANGE_OPEN: &[u8] = br#"{"ack_token":"","action":"checkin","actions":["#;
const POLICY_CHANGE_CLOSE: &[u8] = b"]}";

/// [`policy_change_body`] with its gzip form made from the revision's precompressed text
/// ([`PreparedPolicy::render_action_gzip`]): a rollout compresses the policy once, not once per
/// agent. Without every output key, the body alone (the encoder compresses it).
pub fn policy_change(
    policy: &PreparedPolicy,
    agent_id: &str,
    keys: &BTreeMap<String, String>,
) -> crate::http::Body {
    let raw = policy_change_body(policy, agent_id, keys);
    let mut gzip = crate::http::gzip::Gzip::new(raw.len() / 2);
    gzip.stored(POLICY_CHANGE_OPEN);
    if !policy.render_action_gzip(agent_id, keys, &mut gzip) {
        return crate::http::Body::Bytes(raw);
    }
    gzip.stored(POLICY_CHANGE_CLOSE);
    crate::http::Body::Precompressed {
        raw,
        gzip: gzip.finish(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{OutputKey, PolicyDoc};
    use serde_json::json;

    #[test]
    fn repeated_members_come_back_as_kept() {
        let Value::Object(members) = json!({
            "last_checkin_status": "degraded", "last_checkin_message": "a \"quoted\" message",
            "unhealthy_reason": null, "sequence_num": 9_007_199_254_740_993_i64,
        }) else {
            unreachable!()
        };
        let kept = Repeat::new(&members);
        assert_eq!(kept.members(), members);
        assert!(
            kept.0.len() < 60,
            "kept without the member names: {}",
            kept.0
        );
        let Value::Object(some) =
            json!({"last_checkin_status": "online", "unhealthy_reason": null})
        else {
            unreachable!()
        };
        assert_eq!(Repeat::new(&some).members(), some);
        let Value::Object(other) = json!({"last_checkin_status": "online", "other": [1]}) else {
            unreachable!()
        };
        assert_eq!(Repeat::new(&other).members(), other);
        assert_eq!(Repeat::new(&Map::new()), Repeat::default());
        let mut last = Repeat::default();
        let first = Repeat::new(&some).share(&mut last);
        let second = Repeat::new(&some).share(&mut last);
        assert!(
            Arc::ptr_eq(&first.0, &second.0),
            "the same members share one allocation"
        );
        let third = Repeat::new(&members).share(&mut last);
        assert_eq!(third.members(), members);
        assert_eq!(second.members(), some);
        assert!(Repeat::default().members().is_empty());
    }

    fn prepared(id: &str, rev: i64) -> Arc<PreparedPolicy> {
        Arc::new(
            PreparedPolicy::prepare(
                &PolicyDoc {
                    policy_id: id.into(),
                    revision_idx: rev,
                    data: json!({"outputs": {"default": {"type": "elasticsearch"}}, "output_permissions": {"default": {"r": {}}}}),
                    ..PolicyDoc::default()
                },
                &HashMap::new(),
            )
            .unwrap(),
        )
    }

    #[test]
    fn cache_keeps_the_newest_revision() {
        let mut c = PolicyCache::default();
        assert!(c.install(prepared("p", 2)));
        assert!(!c.install(prepared("p", 1)));
        assert!(!c.install(prepared("p", 2)));
        assert!(c.install(prepared("p", 3)));
        assert_eq!(c.get("p").unwrap().revision, 3);
    }

    #[test]
    fn subscription_follows_the_spec() {
        let mut c = PolicyCache::default();
        c.install(prepared("p", 5));
        let agent = Agent {
            id: "a".into(),
            policy_id: "p".into(),
            policy_revision_idx: 3,
            ..Agent::default()
        };
        let plain = CheckinBody::default();
        assert_eq!(subscription_revision(&agent, &plain, &c), 3);
        let reported = |pid: &str, rev: i64| CheckinBody {
            agent_policy_id: Some(pid.into()),
            policy_revision_idx: Some(rev),
            ..CheckinBody::default()
        };
        assert_eq!(
            subscription_revision(&agent, &reported("p", 5), &c),
            5,
            "implicit ack"
        );
        assert_eq!(
            subscription_revision(&agent, &reported("other", 5), &c),
            0,
            "reassigned"
        );
        assert_eq!(
            subscription_revision(&agent, &reported("p", 9), &c),
            0,
            "beyond the newest"
        );
        let mut lost = agent.clone();
        lost.outputs.insert("default".into(), OutputKey::default());
        assert_eq!(
            subscription_revision(&lost, &reported("p", 5), &c),
            0,
            "lost key forces re-delivery"
        );
    }

    #[test]
    fn poll_duration_rules() {
        let s = PollSettings {
            long_poll: Duration::from_secs(300),
            jitter: Duration::from_secs(30),
            max_poll: Duration::from_secs(3600),
        };
        assert_eq!(
            poll_duration(&s, None, Duration::ZERO, 0.0),
            Duration::from_secs(300)
        );
        assert_eq!(
            poll_duration(&s, None, Duration::from_secs(10), 0.5),
            Duration::from_secs(275)
        );
        assert_eq!(
            poll_duration(&s, Some(Duration::from_secs(180)), Duration::ZERO, 0.0),
            Duration::from_secs(60)
        );
        assert_eq!(
            poll_duration(
                &s,
                Some(Duration::from_secs(7200 + 120)),
                Duration::ZERO,
                0.0
            ),
            Duration::from_secs(3600)
        );
        assert_eq!(
            poll_duration(&s, None, Duration::from_secs(400), 0.0),
            Duration::from_millis(1)
        );
        let no_jitter = PollSettings {
            jitter: Duration::ZERO,
            ..s
        };
        assert_eq!(
            poll_duration(&no_jitter, None, Duration::ZERO, 0.99),
            Duration::from_secs(300)
        );
    }

    #[test]
    fn waiters_index_by_agent_and_policy() {
        // The caller's side: the waiters themselves, kept beside the index.
        struct Parked {
            index: Waiters<u32>,
            waiters: HashMap<u32, Waiter>,
        }
        impl Parked {
            fn park(&mut self, key: u32, a: &str, p: &str, r: i64) -> Option<u32> {
                let mut waiter = Waiter {
                    agent_id: a.into(),
                    policy_id: p.into(),
                    revision: r,
                    position: -1,
                    keys: Box::default(),
                    repeat: Repeat::default(),
                };
                let old = self.index.park(key, &mut waiter);
                self.waiters.insert(key, waiter);
                if let Some(old) = old {
                    self.remove(old);
                }
                old
            }
            fn remove(&mut self, key: u32) -> bool {
                let Some(waiter) = self.waiters.remove(&key) else {
                    return false;
                };
                self.index.remove(key, &waiter);
                true
            }
            fn take_behind(&mut self, p: &str, r: i64) -> Vec<u32> {
                let waiters = &self.waiters;
                let keys = self
                    .index
                    .behind(p, usize::MAX, |k| waiters[&k].revision < r);
                for k in &keys {
                    self.remove(*k);
                }
                keys
            }
        }
        let mut w = Parked {
            index: Waiters::default(),
            waiters: HashMap::new(),
        };
        assert_eq!(w.park(1, "a1", "p", 1), None);
        w.park(2, "a2", "p", 3);
        w.park(3, "a3", "q", 1);
        assert_eq!(
            w.park(4, "a1", "p", 1),
            Some(1),
            "a re-checkin replaces the old park"
        );
        assert!(!w.index.contains(1));
        assert_eq!(w.index.of_agent("a1"), Some(4));
        assert_eq!(w.take_behind("p", 3), [4], "only behind the new revision");
        assert_eq!(w.index.len(), 2);
        assert!(w.remove(2));
        assert!(w.take_behind("p", 10).is_empty());
        assert_eq!(w.index.keys(), [3]);
        assert!(w.index.contains(3) && !w.index.contains(2));
    }

    #[test]
    fn bodies_have_the_wire_shape() {
        assert_eq!(
            serde_json::from_slice::<Value>(&empty_body()).unwrap(),
            json!({"ack_token": "", "action": "checkin"})
        );
        let p = prepared("p", 2);
        let keys: BTreeMap<String, String> = [("default".to_owned(), "i:s".to_owned())]
            .into_iter()
            .collect();
        let body: Value = serde_json::from_slice(&policy_change_body(&p, "a", &keys)).unwrap();
        assert_eq!(body["ack_token"], "");
        assert_eq!(body["actions"][0]["id"], "policy:p:2");
        assert_eq!(
            body["actions"][0]["data"]["policy"]["outputs"]["default"]["api_key"],
            "i:s"
        );
        let w = Waiter::for_agent(
            &Agent {
                id: "a".into(),
                policy_id: "p".into(),
                ..Agent::default()
            },
            1,
            -1,
        );
        assert_eq!(w.current_keys(&p), None);
    }

    #[test]
    fn a_policy_change_is_gzipped_from_the_revisions_precompressed_text() {
        let p = prepared("p", 2);
        let keys: BTreeMap<String, String> = [("default".to_owned(), "i:s\"q".to_owned())]
            .into_iter()
            .collect();
        let crate::http::Body::Precompressed { raw, gzip } = policy_change(&p, "agent-1", &keys)
        else {
            panic!("not precompressed");
        };
        assert_eq!(raw, policy_change_body(&p, "agent-1", &keys));
        assert_eq!(crate::http::gzip::decompress(&gzip, 0).unwrap(), raw);
        // Without the output's key the action is rebuilt without `api_key`: compressed whole.
        let body = policy_change(&p, "agent-1", &BTreeMap::new());
        assert_eq!(
            body,
            crate::http::Body::Bytes(policy_change_body(&p, "agent-1", &BTreeMap::new()))
        );
    }

    #[test]
    fn current_keys_need_the_same_remote_cluster() {
        let p = PreparedPolicy::prepare(
            &PolicyDoc {
                policy_id: "p".into(),
                revision_idx: 2,
                data: json!({"outputs": {"r": {"type": "remote_elasticsearch", "hosts": ["https://r:9200"], "service_token": "t"}},
                             "output_permissions": {"r": {"x": {}}}}),
                ..PolicyDoc::default()
            },
            &std::collections::HashMap::new(),
        )
        .unwrap();
        let out = &p.es_outputs[0];
        let mut agent = Agent {
            id: "a".into(),
            policy_id: "p".into(),
            ..Agent::default()
        };
        agent.outputs.insert(
            "r".into(),
            OutputKey {
                api_key: "i:s".into(),
                permissions_hash: out.hash.clone(),
                remote_config_hash: out.remote_config_hash().into(),
                ..OutputKey::default()
            },
        );
        let w = Waiter::for_agent(&agent, 1, -1);
        assert_eq!(w.current_keys(&p).unwrap()["r"], "i:s");
        agent.outputs.get_mut("r").unwrap().remote_config_hash = "before".into();
        let w = Waiter::for_agent(&agent, 1, -1);
        assert_eq!(
            w.current_keys(&p),
            None,
            "made on the previous configuration"
        );
    }
}
