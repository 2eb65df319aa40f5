//! The API-key cache in front of [`Store::authenticate`] (fleet-protocol.md §1.4, §10.4
//! `api:<key id>`): [`CachedAuth`] is a [`Layer`] over the store it wraps (everything else is
//! forwarded by `layer.rs`) and answers `authenticate` from memory while an entry is fresh, so an agent's requests do not
//! each cost an Elasticsearch `_authenticate` round trip.
//!
//! What it owns:
//! * the entries: key id → SHA-256 of the secret that was accepted (never the secret), whether
//!   the store answered the key enabled or disabled, and an expiry of `ttl - rand[0, jitter)`
//!   (Fleet Server's `ttl_api_key` 15 min, `jitter_api_key` 5 min). The key's name and
//!   metadata are not kept, and answers through the cache (hit or miss alike) carry only the
//!   id and `enabled`: every caller of `authenticate` (`ops::authenticate`, OpAMP, artifacts,
//!   enroll, the agent requests) asks only whether the key is enabled, and the metadata copy
//!   was ~630 bytes of every parked agent's memory (issue 21);
//! * a hit only when the presented secret hashes to the stored digest; unknown keys, wrong
//!   secrets and store errors are never cached (a 401 or a 503 must not stick);
//! * eviction at once of the ids invalidated through it ([`Layer::invalidate_api_keys`],
//!   [`CachedAuth::invalidating`]): keys fleet-edge itself invalidates are refused on the next
//!   request. A key invalidated elsewhere (Kibana) is refused at most one TTL later, as with
//!   Fleet Server; an inactive agent is refused on every request regardless, because
//!   `ops::authenticate_agent` re-reads the agent document;
//! * a bound on the number of entries: expired entries go first, then the oldest.
//!
//! One mutex over a map; the store is never called with it held.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use super::layer::Layer;
use super::{ApiKey, ApiKeyInfo, Store, StoreError};

/// Entries kept at most unless the sizing table asks for more (see [`max_entries_for`]).
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;

/// The most entries [`max_entries_for`] ever asks for.
const MAX_ENTRIES_CAP: usize = 1_000_000;

/// Lifetime and size of the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthCacheSettings {
    /// `ttl_api_key`: how long an answer is trusted, before jitter.
    pub ttl: Duration,
    /// `jitter_api_key`: each entry lives `ttl` minus a random duration in `[0, jitter)`.
    pub jitter: Duration,
    /// Most entries kept (0 disables the cache).
    pub max_entries: usize,
}

impl Default for AuthCacheSettings {
    /// Fleet Server's defaults: 15 min minus up to 5 min.
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(15 * 60),
            jitter: Duration::from_secs(5 * 60),
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }
}

/// Entries for a fleet of up to `max_agents` (the sizing table's bound): twice that (access
/// keys plus room for re-enrolled agents' new keys), at least [`DEFAULT_MAX_ENTRIES`], at most a
/// million.
pub fn max_entries_for(max_agents: Option<u64>) -> usize {
    max_agents.map_or(DEFAULT_MAX_ENTRIES, |agents| {
        usize::try_from(agents.saturating_mul(2))
            .unwrap_or(usize::MAX)
            .clamp(DEFAULT_MAX_ENTRIES, MAX_ENTRIES_CAP)
    })
}

/// Where the cache reads the time (injectable so tests need not sleep).
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

type Digest = [u8; 32];

/// What an entry is keyed by: the first 16 bytes of the SHA-256 of the key id. Fixed-size, so an
/// entry makes no allocation of its own: made on a backend worker among each request's transient
/// allocations, a per-key id string kept that worker's heap pages resident after the request's
/// garbage was freed (issue 21). Two ids sharing it would also need the same secret digest to
/// be mistaken for one another.
type IdKey = [u8; 16];

fn id_key(id: &str) -> IdKey {
    let mut out = [0u8; 16];
    let full = ring::digest::digest(&ring::digest::SHA256, id.as_bytes());
    out.copy_from_slice(full.as_ref().get(..16).unwrap_or(&[0u8; 16]));
    out
}

fn digest(secret: &str) -> Digest {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, secret.as_bytes()).as_ref());
    out
}

struct Entry {
    /// SHA-256 of the secret the store accepted.
    digest: Digest,
    /// The store's answer: enabled, or the disabled marker.
    enabled: bool,
    expires: Instant,
    /// Matches the entry's record in `State::order` (older records for the id are stale).
    stamp: u64,
}

struct State {
    /// Keyed by [`id_key`] of the id.
    entries: HashMap<IdKey, Entry>,
    /// Insertion order, oldest first: `(id, stamp)`; a record whose stamp is not its entry's
    /// (replaced or removed since) is stale and skipped.
    order: VecDeque<(IdKey, u64)>,
    next_stamp: u64,
    /// Bumped by every invalidation: an answer fetched across one is not kept.
    epoch: u64,
    /// Insertions since expired entries were last swept out.
    inserts_since_sweep: usize,
    /// xorshift64* state for the jitter.
    rng: u64,
}

impl State {
    fn new(seed: u64) -> Self {
        Self {
            entries: HashMap::new(),
            order: VecDeque::new(),
            next_stamp: 0,
            epoch: 0,
            inserts_since_sweep: 0,
            rng: seed | 1,
        }
    }

    /// The cached `enabled` of the key, when its entry is fresh and `digest` is the accepted
    /// secret's.
    fn lookup(&mut self, id: &str, digest: &Digest, now: Instant) -> Option<bool> {
        let id = id_key(id);
        let entry = self.entries.get(&id)?;
        if entry.expires <= now {
            self.entries.remove(&id);
            return None;
        }
        (entry.digest == *digest).then_some(entry.enabled)
    }

    fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn jitter(&mut self, jitter: Duration) -> Duration {
        let bound = u64::try_from(jitter.as_nanos()).unwrap_or(u64::MAX);
        if bound == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(self.random() % bound)
    }

    fn insert(
        &mut self,
        id: &str,
        digest: Digest,
        enabled: bool,
        now: Instant,
        settings: &AuthCacheSettings,
    ) {
        let ttl = settings.ttl.saturating_sub(self.jitter(settings.jitter));
        if ttl.is_zero() || settings.max_entries == 0 {
            return;
        }
        let Some(expires) = now.checked_add(ttl) else {
            return;
        };
        let id = id_key(id);
        if !self.entries.contains_key(&id) {
            self.make_room(now, settings.max_entries);
        }
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        self.inserts_since_sweep = self.inserts_since_sweep.saturating_add(1);
        self.entries.insert(
            id,
            Entry {
                digest,
                enabled,
                expires,
                stamp,
            },
        );
        self.order.push_back((id, stamp));
        // Stale records pile up as ids are refreshed or removed; drop them once they are as many
        // as the live ones (each compaction is paid for by the pushes since the last).
        if self.order.len() > 2 * self.entries.len() + 16 {
            let entries = &self.entries;
            self.order
                .retain(|(id, stamp)| entries.get(id).is_some_and(|e| e.stamp == *stamp));
        }
    }

    /// Frees a slot when full: expired entries first, then the oldest.
    fn make_room(&mut self, now: Instant, max: usize) {
        if self.entries.len() < max {
            return;
        }
        // A sweep is O(n): at most one per max/4 insertions keeps insertion O(1) amortized.
        if self.inserts_since_sweep >= max / 4 {
            self.entries.retain(|_, e| e.expires > now);
            self.inserts_since_sweep = 0;
        }
        while self.entries.len() >= max {
            let Some((id, stamp)) = self.order.pop_front() else {
                break;
            };
            if self.entries.get(&id).is_some_and(|e| e.stamp == stamp) {
                self.entries.remove(&id);
            }
        }
    }

    fn evict(&mut self, ids: &[String]) {
        self.epoch += 1;
        for id in ids {
            self.entries.remove(&id_key(id));
        }
    }
}

/// A [`Store`] whose `authenticate` answers from a bounded TTL cache; everything else delegates.
pub struct CachedAuth {
    inner: Arc<dyn Store>,
    settings: AuthCacheSettings,
    clock: Clock,
    state: Mutex<State>,
}

impl CachedAuth {
    /// Wraps `inner` with the real clock.
    pub fn new(inner: Arc<dyn Store>, settings: AuthCacheSettings) -> Self {
        Self::with_clock(inner, settings, Arc::new(Instant::now))
    }

    /// Wraps `inner`, reading the time from `clock`.
    pub fn with_clock(inner: Arc<dyn Store>, settings: AuthCacheSettings, clock: Clock) -> Self {
        Self {
            inner,
            settings,
            clock,
            state: Mutex::new(State::new(seed())),
        }
    }

    /// Runs `f` (which invalidates `ids` somewhere) with the ids evicted before and after it, so
    /// that no answer fetched while it ran is kept: the next request with one of those keys asks
    /// the store. [`Layer::invalidate_api_keys`] goes through here; so do invalidations the
    /// management API makes behind the store's back (revoking an enrollment token).
    pub fn invalidating<R>(&self, ids: &[String], f: impl FnOnce() -> R) -> R {
        self.lock().evict(ids);
        let result = f();
        self.lock().evict(ids);
        result
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; should it, the map is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

/// What the cache answers for a key it accepts: the id and `enabled`, the same whether the
/// answer came from an entry or from the store (name and metadata are not kept; module doc).
fn answer(key: &ApiKey, enabled: bool) -> ApiKeyInfo {
    ApiKeyInfo {
        id: key.id.clone(),
        name: String::new(),
        enabled,
        metadata: serde_json::Value::Null,
    }
}

fn seed() -> u64 {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 8];
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        // Jitter only spreads expiries; the clock is a good enough seed.
        return SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
    }
    u64::from_le_bytes(bytes)
}

impl Layer for CachedAuth {
    fn inner(&self) -> &dyn Store {
        &*self.inner
    }

    fn authenticate(&self, key: &ApiKey) -> Result<Option<ApiKeyInfo>, StoreError> {
        let digest = digest(&key.secret);
        let epoch = {
            let mut state = self.lock();
            if let Some(enabled) = state.lookup(&key.id, &digest, (self.clock)()) {
                return Ok(Some(answer(key, enabled)));
            }
            state.epoch
        };
        // Errors and unknown keys (or wrong secrets) pass through and are not kept; a wrong
        // secret leaves the entry of the right one in place.
        let Some(info) = self.inner.authenticate(key)? else {
            return Ok(None);
        };
        let mut state = self.lock();
        if state.epoch == epoch {
            let now = (self.clock)();
            state.insert(&key.id, digest, info.enabled, now, &self.settings);
        }
        Ok(Some(answer(key, info.enabled)))
    }

    fn invalidate_api_keys(&self, ids: &[String]) -> Result<(), StoreError> {
        self.invalidating(ids, || self.inner.invalidate_api_keys(ids))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde_json::json;

    use super::*;
    use crate::backend::memory::MemoryStore;
    use crate::backend::ops::authenticate;
    use crate::backend::{NewApiKey, OpError, Why};

    type Hook = Box<dyn FnOnce() + Send>;

    /// A memory store whose `authenticate` calls are counted and can run a hook once.
    #[derive(Default)]
    struct Counting {
        inner: Arc<MemoryStore>,
        calls: Arc<AtomicUsize>,
        during: Arc<Mutex<Option<Hook>>>,
    }

    impl Counting {
        fn new() -> Self {
            let store = Counting::default();
            let (calls, during) = (Arc::clone(&store.calls), Arc::clone(&store.during));
            store.inner.on_authenticate(move |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                if let Some(hook) = during.lock().unwrap().take() {
                    hook();
                }
            });
            store
        }

        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
    }

    /// A clock the test moves by hand.
    struct Manual {
        start: Instant,
        offset: Mutex<Duration>,
    }

    impl Manual {
        fn advance_to(&self, at: Duration) {
            *self.offset.lock().unwrap() = at;
        }
    }

    struct Fixture {
        store: Counting,
        clock: Arc<Manual>,
        cache: Arc<CachedAuth>,
    }

    fn fixture(ttl: u64, jitter: u64, max_entries: usize) -> Fixture {
        let store = Counting::new();
        let clock = Arc::new(Manual {
            start: Instant::now(),
            offset: Mutex::new(Duration::ZERO),
        });
        let reader = Arc::clone(&clock);
        let cache = Arc::new(CachedAuth::with_clock(
            store.inner.clone() as Arc<dyn Store>,
            AuthCacheSettings {
                ttl: Duration::from_secs(ttl),
                jitter: Duration::from_secs(jitter),
                max_entries,
            },
            Arc::new(move || reader.start + *reader.offset.lock().unwrap()),
        ));
        Fixture {
            store,
            clock,
            cache,
        }
    }

    impl Fixture {
        fn key(&self, name: &str) -> ApiKey {
            self.store
                .inner
                .create_api_key(&NewApiKey {
                    name: name.into(),
                    role_descriptors: json!({}),
                    metadata: json!({"agent_id": name, "type": "access"}),
                })
                .unwrap()
        }
        fn at(&self, secs: u64) -> &Self {
            self.clock.advance_to(Duration::from_secs(secs));
            self
        }
        fn auth(&self, key: &ApiKey) -> Result<ApiKeyInfo, OpError> {
            authenticate(&*self.cache, key)
        }
    }

    #[test]
    fn a_hit_does_not_ask_the_store_and_answers_the_same() {
        let f = fixture(60, 0, 10);
        let key = f.key("a1");
        let first = f.auth(&key).unwrap();
        assert_eq!(f.store.calls(), 1);
        for _ in 0..5 {
            assert_eq!(f.auth(&key).unwrap(), first);
        }
        assert_eq!(f.store.calls(), 1, "served from the cache");
        assert!(first.enabled);
        assert_eq!(first.id, key.id);
    }

    #[test]
    fn answers_carry_the_id_and_enabled_only() {
        // What every caller reads; the key's name and metadata are not kept (issue 21).
        let f = fixture(60, 0, 10);
        let key = f.key("a1");
        let stored = Store::authenticate(&*f.store.inner, &key).unwrap().unwrap();
        assert_eq!(
            stored.metadata["agent_id"], "a1",
            "the store has the metadata"
        );
        let miss = Store::authenticate(&*f.cache, &key).unwrap().unwrap();
        let hit = Store::authenticate(&*f.cache, &key).unwrap().unwrap();
        assert_eq!(miss, hit, "a hit answers as the miss did");
        assert_eq!(
            hit,
            ApiKeyInfo {
                id: key.id.clone(),
                name: String::new(),
                enabled: true,
                metadata: serde_json::Value::Null,
            }
        );
        f.store
            .inner
            .invalidate_api_keys(std::slice::from_ref(&key.id))
            .unwrap();
        f.at(61);
        let disabled = Store::authenticate(&*f.cache, &key).unwrap().unwrap();
        assert!(!disabled.enabled, "the disabled marker: {disabled:?}");
        assert_eq!(
            Store::authenticate(&*f.cache, &key).unwrap().unwrap(),
            disabled
        );
        assert_eq!(f.store.calls(), 3, "two misses, two hits");
    }

    #[test]
    fn only_the_accepted_secret_hits() {
        let f = fixture(60, 0, 10);
        let key = f.key("a1");
        f.auth(&key).unwrap();
        let wrong = ApiKey {
            id: key.id.clone(),
            secret: "guessed".into(),
        };
        for n in 2..4 {
            assert_eq!(f.auth(&wrong), Err(OpError::Unauthorized(Why::KeyUnknown)));
            assert_eq!(f.store.calls(), n, "a wrong secret always asks the store");
        }
        f.auth(&key).unwrap();
        assert_eq!(
            f.store.calls(),
            3,
            "and leaves the right secret's entry in place"
        );
        let state = f.cache.lock();
        let entry = &state.entries[&id_key(&key.id)];
        assert_eq!(entry.digest, digest(&key.secret));
        assert_ne!(
            &entry.digest[..],
            key.secret.as_bytes(),
            "a digest, not the secret"
        );
    }

    #[test]
    fn entries_expire_after_the_ttl_minus_jitter() {
        let f = fixture(60, 0, 10);
        let key = f.key("a1");
        f.at(0).auth(&key).unwrap();
        f.at(59).auth(&key).unwrap();
        assert_eq!(f.store.calls(), 1, "fresh until the TTL");
        f.at(60).auth(&key).unwrap();
        assert_eq!(f.store.calls(), 2, "expired at the TTL: asked again");
        f.at(119).auth(&key).unwrap();
        assert_eq!(f.store.calls(), 2, "the new answer lives a TTL from then");

        // With jitter each entry lives in (ttl - jitter, ttl].
        let f = fixture(60, 30, 100);
        let keys: Vec<ApiKey> = (0..20).map(|i| f.key(&format!("a{i}"))).collect();
        for key in &keys {
            f.at(0).auth(key).unwrap();
        }
        for key in &keys {
            f.at(30).auth(key).unwrap();
        }
        assert_eq!(f.store.calls(), 20, "all fresh for ttl - jitter");
        for key in &keys {
            f.at(60).auth(key).unwrap();
        }
        assert_eq!(f.store.calls(), 40, "all expired at ttl");
        let expiries: std::collections::HashSet<Instant> =
            f.cache.lock().entries.values().map(|e| e.expires).collect();
        assert!(expiries.len() > 1, "expiries are spread by the jitter");
    }

    #[test]
    fn fleet_server_defaults() {
        let d = AuthCacheSettings::default();
        assert_eq!(d.ttl, Duration::from_secs(900));
        assert_eq!(d.jitter, Duration::from_secs(300));
        assert_eq!(max_entries_for(None), DEFAULT_MAX_ENTRIES);
        assert_eq!(max_entries_for(Some(500)), DEFAULT_MAX_ENTRIES);
        assert_eq!(max_entries_for(Some(80_000)), 160_000);
        assert_eq!(max_entries_for(Some(u64::MAX)), MAX_ENTRIES_CAP);
    }

    #[test]
    fn invalidating_through_the_cache_refuses_the_key_at_once() {
        let f = fixture(60, 0, 10);
        let key = f.key("a1");
        let other = f.key("a2");
        f.auth(&key).unwrap();
        f.auth(&other).unwrap();
        Store::invalidate_api_keys(&*f.cache, std::slice::from_ref(&key.id)).unwrap();
        assert_eq!(f.auth(&key), Err(OpError::Unauthorized(Why::KeyDisabled)));
        assert_eq!(f.store.calls(), 3, "evicted: the store was asked");
        f.auth(&other).unwrap();
        assert_eq!(f.store.calls(), 3, "other keys stay cached");
    }

    #[test]
    fn a_key_invalidated_elsewhere_is_refused_within_one_ttl() {
        let f = fixture(60, 0, 10);
        let key = f.key("a1");
        f.at(0).auth(&key).unwrap();
        // Kibana invalidates the key in the store, not through fleet-edge.
        f.store
            .inner
            .invalidate_api_keys(std::slice::from_ref(&key.id))
            .unwrap();
        assert!(
            f.at(59).auth(&key).is_ok(),
            "Fleet Server's window: up to one TTL"
        );
        assert_eq!(
            f.at(60).auth(&key),
            Err(OpError::Unauthorized(Why::KeyDisabled))
        );
    }

    #[test]
    fn disabled_markers_are_cached() {
        let f = fixture(60, 0, 10);
        let key = f.key("a1");
        f.store
            .inner
            .invalidate_api_keys(std::slice::from_ref(&key.id))
            .unwrap();
        for _ in 0..3 {
            assert_eq!(f.auth(&key), Err(OpError::Unauthorized(Why::KeyDisabled)));
        }
        assert_eq!(f.store.calls(), 1, "the disabled answer was kept");
        let wrong = ApiKey {
            id: key.id.clone(),
            secret: "guessed".into(),
        };
        assert_eq!(
            f.auth(&wrong),
            Err(OpError::Unauthorized(Why::KeyUnknown)),
            "the marker is for the secret the store judged"
        );
    }

    #[test]
    fn unknown_keys_and_errors_are_not_cached() {
        let f = fixture(60, 0, 10);
        let unknown = ApiKey {
            id: "nope".into(),
            secret: "nope".into(),
        };
        assert_eq!(
            f.auth(&unknown),
            Err(OpError::Unauthorized(Why::KeyUnknown))
        );
        assert_eq!(
            f.auth(&unknown),
            Err(OpError::Unauthorized(Why::KeyUnknown))
        );
        assert_eq!(f.store.calls(), 2, "a 401 does not stick");

        let key = f.key("a1");
        f.store
            .inner
            .set_failure(Some(StoreError::Unavailable("down".into())));
        assert_eq!(f.auth(&key), Err(OpError::Unavailable));
        f.store.inner.set_failure(Some(StoreError::TooManyRequests));
        assert_eq!(f.auth(&key), Err(OpError::AuthRateLimited));
        f.store.inner.set_failure(None);
        assert!(f.auth(&key).is_ok(), "a 503 or 429 does not stick");
        assert_eq!(f.store.calls(), 5);
        assert_eq!(f.cache.len(), 1);
    }

    #[test]
    fn an_answer_fetched_across_an_invalidation_is_not_kept() {
        let f = fixture(60, 0, 10);
        let key = f.key("a1");
        // The store says "enabled", then the key is invalidated through the cache before the
        // answer is stored (another worker thread acking an UNENROLL).
        let cache = Arc::clone(&f.cache);
        let id = key.id.clone();
        *f.store.during.lock().unwrap() = Some(Box::new(move || {
            Store::invalidate_api_keys(&*cache, &[id]).unwrap();
        }));
        assert!(f.auth(&key).is_ok(), "the answer of the moment");
        assert_eq!(f.cache.len(), 0, "not kept");
        assert_eq!(f.auth(&key), Err(OpError::Unauthorized(Why::KeyDisabled)));
    }

    #[test]
    fn the_bound_is_kept_dropping_the_oldest() {
        let f = fixture(60, 0, 3);
        let keys: Vec<ApiKey> = (0..5).map(|i| f.key(&format!("a{i}"))).collect();
        for (i, key) in keys.iter().enumerate() {
            f.at(i as u64).auth(key).unwrap();
            assert!(f.cache.len() <= 3);
        }
        assert_eq!(f.cache.len(), 3);
        for key in &keys[2..] {
            f.auth(key).unwrap();
        }
        assert_eq!(f.store.calls(), 5, "the three newest are cached");
        f.auth(&keys[0]).unwrap();
        assert_eq!(f.store.calls(), 6, "the oldest was dropped");
        let state = f.cache.lock();
        assert!(
            state.order.len() <= 2 * state.entries.len() + 16,
            "the order queue stays bounded too"
        );
    }

    #[test]
    fn expired_entries_go_before_live_ones() {
        let f = fixture(10, 0, 4);
        let keys: Vec<ApiKey> = (0..5).map(|i| f.key(&format!("a{i}"))).collect();
        for key in &keys[..3] {
            f.at(0).auth(key).unwrap();
        }
        f.at(5).auth(&keys[3]).unwrap();
        // Full; at 11 the first three have expired and the fourth has not.
        f.at(11).auth(&keys[4]).unwrap();
        assert_eq!(f.cache.len(), 2, "every expired entry was swept out");
        f.auth(&keys[3]).unwrap();
        assert_eq!(f.store.calls(), 5, "the live entry stayed");
    }

    #[test]
    fn refreshing_one_key_keeps_the_order_queue_small() {
        let f = fixture(1, 0, 10);
        let key = f.key("a1");
        for t in 0..1000 {
            f.at(t).auth(&key).unwrap();
        }
        assert_eq!(f.store.calls(), 1000, "expired every second");
        let state = f.cache.lock();
        assert_eq!(state.entries.len(), 1);
        assert!(state.order.len() <= 18, "{}", state.order.len());
    }

    #[test]
    fn everything_else_is_the_wrapped_store() {
        let f = fixture(60, 0, 10);
        let token = f.store.inner.add_enrollment_key("p").unwrap();
        assert_eq!(
            f.cache.enrollment_key(&token.id).unwrap(),
            f.store.inner.enrollment_key(&token.id).unwrap()
        );
        assert!(f.cache.mints_output_keys());
    }
}
