//! One in-memory index: documents (realtime view), the searchable snapshot made by the last
//! refresh, per-shard `_seq_no` counters and global checkpoints, versions, delete tombstones
//! (`index.gc_deletes` 60 s) and the write primitives with `if_seq_no`/`if_primary_term` checks.
//! Routing to shards uses ES's Murmur3 formula; all Fleet indices have one shard.

use crate::error::{EsError, EsResult};
use crate::mapping::Mapping;
use crate::util;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long delete tombstones keep the version (`index.gc_deletes`).
const GC_DELETES: Duration = Duration::from_secs(60);

/// A stored document version.
#[derive(Debug, Clone)]
pub struct Doc {
    /// `_id`.
    pub id: String,
    /// `_source`.
    pub source: Value,
    /// `_seq_no` of the operation that wrote this version.
    pub seq_no: i64,
    /// `_version`.
    pub version: i64,
    /// Shard the document lives on.
    pub shard: u32,
}

/// Index settings the stand-in honours.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `index.number_of_shards`.
    pub shards: u32,
    /// `index.number_of_replicas` (0-1 auto-expanded indices report 0 on one node).
    pub replicas: u32,
    /// `index.refresh_interval`; `None` = `-1` (disabled).
    pub refresh_interval: Option<Duration>,
    /// Hidden / system index.
    pub hidden: bool,
}

/// The outcome of a single write, rendered as ES renders `DocWriteResponse`.
#[derive(Debug, Clone)]
pub struct WriteResult {
    /// Concrete index.
    pub index: String,
    /// `_id`.
    pub id: String,
    /// `_version`.
    pub version: i64,
    /// `created`, `updated`, `deleted`, `not_found`, `noop`.
    pub result: &'static str,
    /// `_seq_no` (absent when negative).
    pub seq_no: i64,
    /// `_shards.total`.
    pub shards_total: u32,
    /// Shard written to (for refresh waits).
    pub shard: u32,
    /// `forced_refresh`.
    pub forced_refresh: bool,
    /// Source after an update (for `_source` in update responses).
    pub source: Option<Value>,
}

impl WriteResult {
    /// HTTP status of this result.
    pub fn status(&self) -> u16 {
        match self.result {
            "created" => 201,
            "not_found" => 404,
            _ => 200,
        }
    }

    /// The response object (`_index`, `_id`, `_version`, `result`, `_shards`, `_seq_no`, ...).
    pub fn to_json(&self) -> Value {
        let (total, ok) = if self.result == "noop" {
            (0, 0)
        } else {
            (self.shards_total, 1)
        };
        let mut v = json!({
            "_index": self.index,
            "_id": self.id,
            "_version": self.version,
            "result": self.result,
            "_shards": {"total": total, "successful": ok, "failed": 0},
        });
        if self.seq_no >= 0 {
            v["_seq_no"] = json!(self.seq_no);
            v["_primary_term"] = json!(1);
        }
        if self.forced_refresh {
            v["forced_refresh"] = Value::Bool(true);
        }
        v
    }
}

/// One index.
#[derive(Debug)]
pub struct Index {
    /// Concrete name.
    pub name: String,
    /// `index_uuid`.
    pub uuid: String,
    /// Mapping (grows on write when dynamic).
    pub mapping: Mapping,
    /// Settings.
    pub settings: Settings,
    /// Aliases pointing at this index.
    pub aliases: Vec<String>,
    /// Data stream this is a backing index of.
    pub data_stream: Option<String>,
    /// Creation time (epoch ms).
    pub created_ms: i64,
    /// Realtime documents by id.
    docs: HashMap<String, Arc<Doc>>,
    tombstones: HashMap<String, (i64, Instant)>,
    /// Highest issued seq_no per shard (-1 when none).
    max_seq_no: Vec<i64>,
    /// Highest seq_no covered by the last refresh, per shard.
    refreshed_seq_no: Vec<i64>,
    /// Searchable snapshot ordered like Lucene doc ids (write order).
    searchable: BTreeMap<u64, Arc<Doc>>,
    searchable_pos: HashMap<String, u64>,
    pending: HashSet<String>,
    order: u64,
    /// Last refresh time.
    pub last_refresh: Instant,
    /// Last search time (search-idle detection).
    pub last_search: Instant,
}

/// `if_seq_no` / `if_primary_term` of a request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Occ {
    /// Required seq_no.
    pub if_seq_no: Option<i64>,
    /// Required primary term.
    pub if_primary_term: Option<i64>,
}

impl Index {
    /// A new empty index.
    pub fn new(name: &str, mapping: Mapping, settings: Settings, now_ms: i64) -> Index {
        let shards = settings.shards.max(1) as usize;
        Index {
            name: name.to_string(),
            uuid: util::random_uuid22(),
            mapping,
            settings,
            aliases: Vec::new(),
            data_stream: None,
            created_ms: now_ms,
            docs: HashMap::new(),
            tombstones: HashMap::new(),
            max_seq_no: vec![-1; shards],
            refreshed_seq_no: vec![-1; shards],
            searchable: BTreeMap::new(),
            searchable_pos: HashMap::new(),
            pending: HashSet::new(),
            order: 0,
            last_refresh: Instant::now(),
            last_search: Instant::now(),
        }
    }

    /// Number of shards.
    pub fn shards(&self) -> u32 {
        self.settings.shards.max(1)
    }

    /// Global checkpoint per shard (equals max issued seq_no: every write completes under the lock).
    pub fn global_checkpoints(&self) -> Vec<i64> {
        self.max_seq_no.clone()
    }

    /// Max issued seq_no of a shard.
    pub fn max_seq_no(&self, shard: u32) -> i64 {
        self.max_seq_no.get(shard as usize).copied().unwrap_or(-1)
    }

    /// Seq_no covered by the last refresh of a shard.
    pub fn refreshed_seq_no(&self, shard: u32) -> i64 {
        self.refreshed_seq_no
            .get(shard as usize)
            .copied()
            .unwrap_or(-1)
    }

    /// Realtime document count.
    pub fn doc_count(&self) -> usize {
        self.docs.len()
    }

    /// Whether there are writes not yet visible to search.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// `_shards.total` for writes: primary plus replicas.
    pub fn shards_total(&self) -> u32 {
        1 + self.settings.replicas
    }

    /// Realtime GET.
    pub fn get(&self, id: &str) -> Option<Arc<Doc>> {
        self.docs.get(id).cloned()
    }

    /// The searchable snapshot in doc order.
    pub fn searchable(&self) -> impl Iterator<Item = &Arc<Doc>> {
        self.searchable.values()
    }

    /// Number of searchable docs.
    pub fn searchable_count(&self) -> usize {
        self.searchable.len()
    }

    /// Makes every pending write visible to search.
    pub fn refresh(&mut self) {
        for id in std::mem::take(&mut self.pending) {
            if let Some(pos) = self.searchable_pos.remove(&id) {
                self.searchable.remove(&pos);
            }
            if let Some(doc) = self.docs.get(&id) {
                self.order += 1;
                self.searchable.insert(self.order, doc.clone());
                self.searchable_pos.insert(id, self.order);
            }
        }
        self.refreshed_seq_no = self.max_seq_no.clone();
        self.last_refresh = Instant::now();
        let now = Instant::now();
        self.tombstones
            .retain(|_, (_, t)| now.duration_since(*t) < GC_DELETES);
    }

    fn shard_of(&self, id: &str) -> u32 {
        util::shard_for(id, self.shards())
    }

    fn next_seq(&mut self, shard: u32) -> i64 {
        let s = &mut self.max_seq_no[shard as usize];
        *s += 1;
        *s
    }

    fn check_occ(&self, id: &str, cur: Option<&Doc>, occ: Occ) -> EsResult<()> {
        let (Some(s), Some(t)) = (occ.if_seq_no, occ.if_primary_term) else {
            return Ok(());
        };
        match cur {
            None => Err(EsError::version_conflict(
                id,
                &format!("required seqNo [{s}], primary term [{t}]. but no document was found"),
                &self.name,
                &self.uuid,
            )),
            Some(d) if d.seq_no != s || t != 1 => Err(EsError::version_conflict(
                id,
                &format!(
                    "required seqNo [{s}], primary term [{t}]. current document has seqNo [{}] and primary term [1]",
                    d.seq_no
                ),
                &self.name,
                &self.uuid,
            )),
            Some(_) => Ok(()),
        }
    }

    /// Index (`create` = fail on existing) a full document.
    pub fn put(
        &mut self,
        id: &str,
        source: Value,
        create: bool,
        occ: Occ,
    ) -> EsResult<WriteResult> {
        let cur = self.docs.get(id).cloned();
        if create {
            if let Some(d) = &cur {
                return Err(EsError::version_conflict(
                    id,
                    &format!("document already exists (current version [{}])", d.version),
                    &self.name,
                    &self.uuid,
                ));
            }
        }
        self.check_occ(id, cur.as_deref(), occ)?;
        self.mapping.check(&source, id)?;
        self.mapping.map_dynamic(&source);
        let version = match &cur {
            Some(d) => d.version + 1,
            None => self.tombstones.get(id).map(|(v, _)| v + 1).unwrap_or(1),
        };
        Ok(self.store(
            id,
            source,
            version,
            if cur.is_some() { "updated" } else { "created" },
        ))
    }

    /// Stores a new version unconditionally (used by `put` and by updates after their checks).
    pub fn store(
        &mut self,
        id: &str,
        source: Value,
        version: i64,
        result: &'static str,
    ) -> WriteResult {
        let shard = self.shard_of(id);
        let seq_no = self.next_seq(shard);
        self.tombstones.remove(id);
        self.docs.insert(
            id.to_string(),
            Arc::new(Doc {
                id: id.to_string(),
                source,
                seq_no,
                version,
                shard,
            }),
        );
        self.pending.insert(id.to_string());
        self.result(id, version, result, seq_no, shard)
    }

    fn result(
        &self,
        id: &str,
        version: i64,
        result: &'static str,
        seq_no: i64,
        shard: u32,
    ) -> WriteResult {
        WriteResult {
            index: self.name.clone(),
            id: id.to_string(),
            version,
            result,
            seq_no,
            shards_total: self.shards_total(),
            shard,
            forced_refresh: false,
            source: None,
        }
    }

    /// A noop result for an existing document.
    pub fn noop(&self, doc: &Doc) -> WriteResult {
        self.result(&doc.id, doc.version, "noop", doc.seq_no, doc.shard)
    }

    /// Delete; a missing id still consumes a seq_no and answers `not_found`.
    pub fn delete(&mut self, id: &str, occ: Occ) -> EsResult<WriteResult> {
        let cur = self.docs.get(id).cloned();
        self.check_occ(id, cur.as_deref(), occ)?;
        let shard = self.shard_of(id);
        let seq_no = self.next_seq(shard);
        match cur {
            Some(d) => {
                self.docs.remove(id);
                self.pending.insert(id.to_string());
                let version = d.version + 1;
                self.tombstones
                    .insert(id.to_string(), (version, Instant::now()));
                Ok(self.result(id, version, "deleted", seq_no, shard))
            }
            None => {
                let version = self.tombstones.get(id).map(|(v, _)| v + 1).unwrap_or(1);
                self.tombstones
                    .insert(id.to_string(), (version, Instant::now()));
                Ok(self.result(id, version, "not_found", seq_no, shard))
            }
        }
    }

    /// Removes every document (used by reset helpers; consumes no seq_no).
    pub fn doc_ids(&self) -> Vec<String> {
        self.docs.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx() -> Index {
        Index::new(
            "t",
            Mapping::dynamic(),
            Settings {
                shards: 1,
                replicas: 1,
                refresh_interval: Some(Duration::from_secs(1)),
                hidden: false,
            },
            0,
        )
    }

    #[test]
    fn seq_no_accounting() {
        let mut i = idx();
        let r = i.put("1", json!({"a":1}), false, Occ::default()).unwrap();
        assert_eq!((r.seq_no, r.version, r.result), (0, 1, "created"));
        let r = i.put("1", json!({"a":2}), false, Occ::default()).unwrap();
        assert_eq!((r.seq_no, r.version, r.result), (1, 2, "updated"));
        let e = i.put("1", json!({}), true, Occ::default()).unwrap_err();
        assert_eq!(e.status, 409);
        assert!(e
            .reason
            .contains("document already exists (current version [2])"));
        let r = i.delete("2", Occ::default()).unwrap();
        assert_eq!((r.seq_no, r.result, r.status()), (2, "not_found", 404));
        let r = i.delete("1", Occ::default()).unwrap();
        assert_eq!((r.seq_no, r.version), (3, 3));
        let r = i.put("1", json!({}), true, Occ::default()).unwrap();
        assert_eq!(
            (r.seq_no, r.version),
            (4, 4),
            "version continues from tombstone"
        );
        assert_eq!(i.global_checkpoints(), vec![4]);
    }

    #[test]
    fn refresh_controls_visibility() {
        let mut i = idx();
        i.put("1", json!({}), false, Occ::default()).unwrap();
        assert_eq!(i.searchable_count(), 0);
        assert!(i.get("1").is_some());
        i.refresh();
        assert_eq!(i.searchable_count(), 1);
        assert_eq!(i.refreshed_seq_no(0), 0);
        i.delete("1", Occ::default()).unwrap();
        assert_eq!(i.searchable_count(), 1);
        i.refresh();
        assert_eq!(i.searchable_count(), 0);
    }

    #[test]
    fn occ_conflicts() {
        let mut i = idx();
        i.put("1", json!({}), false, Occ::default()).unwrap();
        let occ = Occ {
            if_seq_no: Some(5),
            if_primary_term: Some(1),
        };
        let e = i.put("1", json!({}), false, occ).unwrap_err();
        assert_eq!(
            e.reason,
            "[1]: version conflict, required seqNo [5], primary term [1]. current document has seqNo [0] and primary term [1]"
        );
        let e = i.delete("9", occ).unwrap_err();
        assert!(e.reason.ends_with("but no document was found"));
    }
}
