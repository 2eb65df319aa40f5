//! Files delivered to agents (fleet-protocol.md §8 "File delivery", es-contract.md §2.9): where
//! a file is looked up ([`DeliveryFrom`]), where its bytes are ([`DeliveryBytes`]), and the files
//! an operator places for agents in the stores without Kibana (the embedded store keeps each as
//! one file under `<data-dir>/files/tohost/` with a JSON metadata document beside it, the memory
//! store in memory). Elasticsearch's side is in `es/files.rs`; the endpoint's decisions in
//! `ops/delivery.rs`.
//!
//! A placed file is written in parts of at most [`CHUNK_SIZE`] bytes, in order, to a `.part`
//! file; completing it checks the size and SHA-256 (read back from disk, streamed), fsyncs and
//! renames it, then rewrites its metadata as `READY`. A crash leaves either a READY file whose
//! bytes were checked or a placement that never becomes deliverable.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde_json::{json, Map, Value};

use super::files::{epoch_millis, FileStatus, CHUNK_SIZE};
use super::{Store, StoreError};
use crate::http::BodyPart;

pub use super::files::{DeliveryBytes, DeliveryFrom};

fn failed(status: u16, detail: impl Into<String>) -> StoreError {
    StoreError::Failed {
        status,
        detail: detail.into(),
    }
}

/// The prefix of [`upload_locator`]s.
const UPLOAD_PART: &str = "upload\u{1f}";

/// The locator of chunk `pos` of the upload whose metadata document is `doc_id` (a download of
/// an uploaded file streams these).
pub fn upload_locator(doc_id: &str, pos: u64) -> String {
    format!("{UPLOAD_PART}{pos}\u{1f}{doc_id}")
}

/// One part of a streamed body: the chunk its locator names, cut to `skip..skip + take`.
pub fn read_part(store: &dyn Store, part: &BodyPart) -> Result<Vec<u8>, String> {
    let files = store
        .files()
        .ok_or_else(|| "this store keeps no files".to_owned())?;
    let read = match part.locator.strip_prefix(UPLOAD_PART) {
        Some(rest) => {
            let (pos, doc_id) = rest.split_once('\u{1f}').unwrap_or(("", rest));
            let pos: u64 = pos
                .parse()
                .map_err(|_| format!("bad locator {}", part.locator))?;
            let doc = files
                .upload_doc(doc_id)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("file {doc_id} is gone"))?;
            let info = super::files::UploadInfo::from_doc(doc_id, &doc)
                .ok_or_else(|| format!("file {doc_id}: unreadable metadata"))?;
            files
                .read_chunk(&info, pos)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("chunk {pos} of {doc_id} is missing"))
        }
        None => files.read_part(&part.locator).map_err(|e| e.to_string()),
    };
    let mut bytes = read?;
    let skip = usize::try_from(part.skip).map_err(|e| e.to_string())?;
    let take = usize::try_from(part.take).map_err(|e| e.to_string())?;
    if skip.checked_add(take).is_none_or(|end| end > bytes.len()) {
        return Err(format!(
            "chunk {} has {} bytes, {} were expected from {skip}",
            part.locator,
            bytes.len(),
            take
        ));
    }
    bytes.truncate(skip + take);
    bytes.drain(..skip);
    Ok(bytes)
}

/// The metadata document of a file placed for `agents` (the `.fleet-fileds-tohost-meta-*`
/// shape: `file.Meta.target_agents`, `file.Status`, `file.hash.sha256` once known).
pub fn placed_doc(
    name: &str,
    size: u64,
    mime_type: Option<&str>,
    agents: &[String],
    now: SystemTime,
) -> Map<String, Value> {
    let mut file = json!({
        "name": name,
        "size": size,
        "ChunkSize": CHUNK_SIZE,
        "Status": FileStatus::Awaiting.as_str(),
        "Meta": {"target_agents": agents},
        "created": crate::model::time::rfc3339_millis(now),
    });
    if let Some(m) = mime_type {
        file["mime_type"] = json!(m);
    }
    let mut doc = Map::new();
    doc.insert("@timestamp".into(), json!(epoch_millis(now)));
    doc.insert("source".into(), json!("fleet-edge"));
    doc.insert("file".into(), file);
    doc
}

fn size_of(doc: &Map<String, Value>) -> u64 {
    doc.get("file")
        .and_then(|f| f.get("size"))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

fn status_of(doc: &Map<String, Value>) -> FileStatus {
    FileStatus::parse(
        doc.get("file")
            .and_then(|f| f.get("Status"))
            .and_then(Value::as_str)
            .unwrap_or(""),
    )
}

/// Whether a placed file's document matches an agent's lookup (READY, targets the agent).
pub fn deliverable_to(doc: &Map<String, Value>, agent_id: &str) -> bool {
    status_of(doc) == FileStatus::Ready
        && doc
            .get("file")
            .and_then(|f| f.pointer("/Meta/target_agents"))
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(agent_id)))
}

/// Marks a document READY with its checked digest.
fn mark_ready(doc: &mut Map<String, Value>, sha256: &str) {
    if let Some(file) = doc.get_mut("file").and_then(Value::as_object_mut) {
        file.insert("Status".into(), json!(FileStatus::Ready.as_str()));
        file.insert("hash".into(), json!({"sha256": sha256}));
    }
}

/// Checks a finished placement against its document: the size, and the SHA-256 the operator
/// announced (when given). Returns the digest.
fn check_complete(doc: &Map<String, Value>, got: u64, digest: &str) -> Result<(), StoreError> {
    let size = size_of(doc);
    if got != size {
        return Err(failed(
            400,
            format!("the file has {got} bytes, {size} were announced"),
        ));
    }
    let announced = doc
        .get("file")
        .and_then(|f| f.pointer("/hash/sha256"))
        .and_then(Value::as_str);
    if let Some(a) = announced.filter(|a| !a.eq_ignore_ascii_case(digest)) {
        return Err(failed(
            400,
            format!("the file's SHA-256 is {digest}, {a} was announced"),
        ));
    }
    Ok(())
}

fn check_part(
    doc: &Map<String, Value>,
    received: u64,
    n: u64,
    len: usize,
) -> Result<(), StoreError> {
    if status_of(doc) != FileStatus::Awaiting {
        return Err(failed(409, "the file is complete already"));
    }
    if n != received.div_ceil(CHUNK_SIZE) || !received.is_multiple_of(CHUNK_SIZE) {
        return Err(failed(
            400,
            format!(
                "part {n} out of order: {received} bytes received, parts are {CHUNK_SIZE} bytes"
            ),
        ));
    }
    if len as u64 > CHUNK_SIZE || received + len as u64 > size_of(doc) {
        return Err(failed(400, "the part passes the announced size"));
    }
    Ok(())
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A placed file in memory: its document and bytes.
type Placed = (Map<String, Value>, Vec<u8>);

/// Placed files in memory (the memory store): documents and bytes by file id.
#[derive(Debug, Default)]
pub struct MemoryPlaced {
    files: Mutex<BTreeMap<String, Placed>>,
}

impl MemoryPlaced {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, BTreeMap<String, Placed>>, StoreError> {
        self.files.lock().map_err(|_| failed(500, "lock poisoned"))
    }

    /// A placement begins.
    pub fn begin(&self, id: &str, doc: &Map<String, Value>) -> Result<(), StoreError> {
        let mut files = self.lock()?;
        if files.contains_key(id) {
            return Err(StoreError::Conflict);
        }
        files.insert(id.to_owned(), (doc.clone(), Vec::new()));
        Ok(())
    }

    /// Part `n` of a placement.
    pub fn part(&self, id: &str, n: u64, bytes: &[u8]) -> Result<(), StoreError> {
        let mut files = self.lock()?;
        let (doc, data) = files.get_mut(id).ok_or(StoreError::NotFound)?;
        check_part(doc, data.len() as u64, n, bytes.len())?;
        data.extend_from_slice(bytes);
        Ok(())
    }

    /// A placement completes.
    pub fn complete(&self, id: &str) -> Result<Map<String, Value>, StoreError> {
        let mut files = self.lock()?;
        let (doc, data) = files.get_mut(id).ok_or(StoreError::NotFound)?;
        let digest = hex(ring::digest::digest(&ring::digest::SHA256, data).as_ref());
        check_complete(doc, data.len() as u64, &digest)?;
        mark_ready(doc, &digest);
        Ok(doc.clone())
    }

    /// A file's document, when `from` may see it.
    pub fn meta(
        &self,
        id: &str,
        from: DeliveryFrom<'_>,
    ) -> Result<Option<Map<String, Value>>, StoreError> {
        let files = self.lock()?;
        Ok(match from {
            DeliveryFrom::Agent(agent) => files
                .get(id)
                .filter(|(doc, _)| deliverable_to(doc, agent))
                .map(|(doc, _)| doc.clone()),
            // No integration libraries here: the lookup fails as a missing document does.
            DeliveryFrom::Library { .. } => return Err(StoreError::NotFound),
        })
    }

    /// A file's chunks, as locators `<id>\u{1f}<pos>`.
    pub fn chunks(&self, id: &str) -> Result<DeliveryBytes, StoreError> {
        let files = self.lock()?;
        let count = files
            .get(id)
            .filter(|(doc, _)| status_of(doc) == FileStatus::Ready)
            .map_or(0, |(_, data)| (data.len() as u64).div_ceil(CHUNK_SIZE));
        Ok(DeliveryBytes::Chunks(
            (0..count).map(|pos| format!("{id}\u{1f}{pos}")).collect(),
        ))
    }

    /// The chunk a locator names.
    pub fn read(&self, locator: &str) -> Result<Vec<u8>, StoreError> {
        let (id, pos) = locator.split_once('\u{1f}').ok_or(StoreError::NotFound)?;
        let pos: u64 = pos.parse().map_err(|_| StoreError::NotFound)?;
        let files = self.lock()?;
        let (_, data) = files.get(id).ok_or(StoreError::NotFound)?;
        let start = usize::try_from(pos * CHUNK_SIZE).map_err(|_| StoreError::NotFound)?;
        let end = (start + CHUNK_SIZE as usize).min(data.len());
        data.get(start..end)
            .map(<[u8]>::to_vec)
            .ok_or(StoreError::NotFound)
    }

    /// Documents of every placed file, with `_id`.
    pub fn list(&self) -> Result<Vec<Map<String, Value>>, StoreError> {
        Ok(self
            .lock()?
            .iter()
            .map(|(id, (doc, _))| with_id(id, doc))
            .collect())
    }
}

fn with_id(id: &str, doc: &Map<String, Value>) -> Map<String, Value> {
    let mut d = doc.clone();
    d.insert("_id".into(), json!(id));
    d
}

/// Placed files of the embedded store: `<dir>/<id>` (complete), `<dir>/<id>.part` (being
/// placed) and `<dir>/<id>.json` (the metadata document).
#[derive(Debug)]
pub struct DiskPlaced {
    dir: PathBuf,
    /// Serializes placements (an operator's CLI, not a fleet).
    lock: Mutex<()>,
}

/// A file id is a UUID the server made; anything else never names a path.
fn safe_id(id: &str) -> Result<&str, StoreError> {
    if !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        Ok(id)
    } else {
        Err(StoreError::NotFound)
    }
}

fn io_failed(what: &str, e: std::io::Error) -> StoreError {
    failed(500, format!("{what}: {e}"))
}

impl DiskPlaced {
    /// Placed files under `dir` (created when missing, private).
    pub fn new(dir: PathBuf) -> DiskPlaced {
        DiskPlaced {
            dir,
            lock: Mutex::new(()),
        }
    }

    fn path(&self, id: &str, ext: &str) -> Result<PathBuf, StoreError> {
        Ok(self.dir.join(format!("{}{ext}", safe_id(id)?)))
    }

    fn read_doc(&self, id: &str) -> Result<Option<Map<String, Value>>, StoreError> {
        match fs::read(self.path(id, ".json")?) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| failed(500, format!("placed file {id}: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_failed("reading a placed file's document", e)),
        }
    }

    fn write_doc(&self, id: &str, doc: &Map<String, Value>) -> Result<(), StoreError> {
        let tmp = self.path(id, ".json.tmp")?;
        let bytes = serde_json::to_vec(doc).map_err(|e| failed(500, e.to_string()))?;
        let write = || -> std::io::Result<()> {
            let mut f = private_file(&tmp, true)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, self.path(id, ".json").map_err(std::io::Error::other)?)?;
            File::open(&self.dir)?.sync_all()
        };
        write().map_err(|e| io_failed("writing a placed file's document", e))
    }

    fn guard(&self) -> Result<std::sync::MutexGuard<'_, ()>, StoreError> {
        self.lock.lock().map_err(|_| failed(500, "lock poisoned"))
    }

    /// A placement begins.
    pub fn begin(&self, id: &str, doc: &Map<String, Value>) -> Result<(), StoreError> {
        let _g = self.guard()?;
        fs::create_dir_all(&self.dir)
            .map_err(|e| io_failed("creating the placed-files directory", e))?;
        if self.read_doc(id)?.is_some() {
            return Err(StoreError::Conflict);
        }
        private_file(&self.path(id, ".part")?, true)
            .map_err(|e| io_failed("creating a placed file", e))?;
        self.write_doc(id, doc)
    }

    /// Part `n` of a placement, appended.
    pub fn part(&self, id: &str, n: u64, bytes: &[u8]) -> Result<(), StoreError> {
        let _g = self.guard()?;
        let doc = self.read_doc(id)?.ok_or(StoreError::NotFound)?;
        let part = self.path(id, ".part")?;
        let received = fs::metadata(&part)
            .map_err(|e| io_failed("reading a placed file", e))?
            .len();
        check_part(&doc, received, n, bytes.len())?;
        let mut f = OpenOptions::new()
            .append(true)
            .open(&part)
            .map_err(|e| io_failed("opening a placed file", e))?;
        f.write_all(bytes)
            .map_err(|e| io_failed("writing a placed file", e))
    }

    /// A placement completes: size and digest checked from disk, then READY.
    pub fn complete(&self, id: &str) -> Result<Map<String, Value>, StoreError> {
        let _g = self.guard()?;
        let mut doc = self.read_doc(id)?.ok_or(StoreError::NotFound)?;
        if status_of(&doc) == FileStatus::Ready {
            return Ok(doc);
        }
        let part = self.path(id, ".part")?;
        let (got, digest) = hash_file(&part).map_err(|e| io_failed("reading a placed file", e))?;
        check_complete(&doc, got, &digest)?;
        let finish = || -> std::io::Result<()> {
            File::open(&part)?.sync_all()?;
            fs::rename(&part, self.path(id, "").map_err(std::io::Error::other)?)?;
            File::open(&self.dir)?.sync_all()
        };
        finish().map_err(|e| io_failed("finishing a placed file", e))?;
        mark_ready(&mut doc, &digest);
        self.write_doc(id, &doc)?;
        Ok(doc)
    }

    /// A file's document, when `from` may see it.
    pub fn meta(
        &self,
        id: &str,
        from: DeliveryFrom<'_>,
    ) -> Result<Option<Map<String, Value>>, StoreError> {
        let DeliveryFrom::Agent(agent) = from else {
            // No integration libraries here: the lookup fails as a missing document does.
            return Err(StoreError::NotFound);
        };
        if safe_id(id).is_err() {
            return Ok(None);
        }
        Ok(self.read_doc(id)?.filter(|d| deliverable_to(d, agent)))
    }

    /// The open file of a READY placement (no chunks when there is none).
    pub fn bytes(&self, id: &str) -> Result<DeliveryBytes, StoreError> {
        if safe_id(id).is_err() {
            return Ok(DeliveryBytes::Chunks(Vec::new()));
        }
        match File::open(self.path(id, "")?) {
            Ok(f) => Ok(DeliveryBytes::File(std::sync::Arc::new(f))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(DeliveryBytes::Chunks(Vec::new()))
            }
            Err(e) => Err(io_failed("opening a placed file", e)),
        }
    }

    /// Documents of every placed file, with `_id`.
    pub fn list(&self) -> Result<Vec<Map<String, Value>>, StoreError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_failed("listing placed files", e)),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix(".json") {
                if let Some(doc) = self.read_doc(id)? {
                    out.push(with_id(id, &doc));
                }
            }
        }
        Ok(out)
    }
}

fn private_file(path: &Path, truncate: bool) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(truncate)
        .mode(0o600)
        .open(path)
}

/// Size and hex SHA-256 of a file, read in 64 KiB pieces.
fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut f = File::open(path)?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        ctx.update(buf.get(..n).unwrap_or_default());
    }
    Ok((total, hex(ctx.finish().as_ref())))
}
