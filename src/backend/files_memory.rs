//! [`MemoryFiles`]: uploads and placed files in memory, the reference semantics of
//! [`FileStore`], used by [`super::memory::MemoryStore`].

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::{Map, Value};

use super::delivery::MemoryPlaced;
use super::files::{
    apply_status, listing, ChunkInfo, ChunkWrite, DeliveryBytes, DeliveryFrom, FileStatus,
    FileStore, UploadInfo,
};
use super::StoreError;

/// A stored chunk of [`MemoryFiles`].
#[derive(Debug)]
struct MemoryChunk {
    last: bool,
    sha2: String,
    data: Vec<u8>,
}

/// Uploads in memory: the reference semantics, used by [`super::memory::MemoryStore`].
#[derive(Debug, Default)]
pub struct MemoryFiles {
    inner: Mutex<MemoryFilesInner>,
    placed: MemoryPlaced,
}

#[derive(Debug, Default)]
struct MemoryFilesInner {
    /// Metadata documents by `_id`.
    docs: BTreeMap<String, Map<String, Value>>,
    /// Chunks by (`bid`, position).
    chunks: BTreeMap<(String, u64), MemoryChunk>,
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Unavailable("file store lock poisoned".into())
}

impl MemoryFiles {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, MemoryFilesInner>, StoreError> {
        self.inner.lock().map_err(poisoned)
    }
}

impl FileStore for MemoryFiles {
    fn create_upload(&self, info: &UploadInfo, doc: &Map<String, Value>) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        if inner.docs.contains_key(&info.doc_id) {
            return Err(StoreError::Conflict);
        }
        inner.docs.insert(info.doc_id.clone(), doc.clone());
        Ok(())
    }

    fn upload(&self, upload_id: &str) -> Result<Option<UploadInfo>, StoreError> {
        let inner = self.lock()?;
        Ok(inner
            .docs
            .iter()
            .filter(|(_, d)| d.get("upload_id").and_then(Value::as_str) == Some(upload_id))
            .find_map(|(id, d)| UploadInfo::from_doc(id, d)))
    }

    fn write_chunk(&self, info: &UploadInfo, chunk: &ChunkWrite<'_>) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        let key = (info.doc_id.clone(), chunk.pos);
        if inner.chunks.contains_key(&key) {
            return Err(StoreError::Conflict);
        }
        inner.chunks.insert(
            key,
            MemoryChunk {
                last: chunk.last,
                sha2: chunk.sha2.to_owned(),
                data: chunk.data.to_vec(),
            },
        );
        Ok(())
    }

    fn chunk_infos(&self, info: &UploadInfo) -> Result<Vec<ChunkInfo>, StoreError> {
        let inner = self.lock()?;
        Ok(inner
            .chunks
            .range((info.doc_id.clone(), 0)..=(info.doc_id.clone(), u64::MAX))
            .map(|((_, pos), c)| ChunkInfo {
                pos: *pos,
                last: c.last,
                sha2: c.sha2.clone(),
                size: c.data.len() as u64,
            })
            .collect())
    }

    fn set_upload_status(
        &self,
        info: &UploadInfo,
        status: FileStatus,
        hash: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        let doc = inner
            .docs
            .get_mut(&info.doc_id)
            .ok_or(StoreError::NotFound)?;
        apply_status(doc, status, hash);
        Ok(())
    }

    fn delete_chunks(&self, info: &UploadInfo) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        inner.chunks.retain(|(bid, _), _| *bid != info.doc_id);
        Ok(())
    }

    fn list_uploads(&self, agent_id: Option<&str>) -> Result<Vec<Map<String, Value>>, StoreError> {
        let inner = self.lock()?;
        Ok(listing(
            inner
                .docs
                .iter()
                .filter(|(_, d)| {
                    agent_id.is_none_or(|a| d.get("agent_id").and_then(Value::as_str) == Some(a))
                })
                .map(|(id, d)| (id.clone(), d.clone())),
        ))
    }

    fn upload_doc(&self, doc_id: &str) -> Result<Option<Map<String, Value>>, StoreError> {
        Ok(self.lock()?.docs.get(doc_id).cloned())
    }

    fn read_chunk(&self, info: &UploadInfo, pos: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .lock()?
            .chunks
            .get(&(info.doc_id.clone(), pos))
            .map(|c| c.data.clone()))
    }

    fn delivery_meta(
        &self,
        file_id: &str,
        from: DeliveryFrom<'_>,
    ) -> Result<Option<Map<String, Value>>, StoreError> {
        self.placed.meta(file_id, from)
    }

    fn delivery_bytes(
        &self,
        file_id: &str,
        _from: DeliveryFrom<'_>,
    ) -> Result<DeliveryBytes, StoreError> {
        self.placed.chunks(file_id)
    }

    fn read_part(&self, locator: &str) -> Result<Vec<u8>, StoreError> {
        self.placed.read(locator)
    }

    fn place_begin(&self, id: &str, doc: &Map<String, Value>) -> Result<(), StoreError> {
        self.placed.begin(id, doc)
    }

    fn place_part(&self, id: &str, n: u64, bytes: &[u8]) -> Result<(), StoreError> {
        self.placed.part(id, n, bytes)
    }

    fn place_complete(&self, id: &str) -> Result<Map<String, Value>, StoreError> {
        self.placed.complete(id)
    }

    fn list_placed(&self) -> Result<Vec<Map<String, Value>>, StoreError> {
        self.placed.list()
    }
}
