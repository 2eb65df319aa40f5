//! [`FileStore`] for [`EsStore`]: uploads exactly as Fleet Server stores them (es-contract.md
//! §2.3, §2.5.4 Q10/Q11, §2.8, §2.9; `internal/pkg/file/uploader/es.go`):
//!
//! | method | call |
//! |---|---|
//! | `create_upload` | `POST /_bulk?refresh=true` `create` `<action_id>.<agent_id>` in `.fleet-fileds-fromhost-meta-<src>` |
//! | `upload` | `POST /_msearch` Q10 (`term upload_id`) on `.fleet-fileds-fromhost-meta-*` |
//! | `write_chunk` | `PUT /.fleet-fileds-fromhost-data-<src>/_create/<bid>.<n>` with a CBOR body ([`chunk_document`]) |
//! | `chunk_infos` | `POST /.fleet-fileds-fromhost-data-<src>/_refresh`, then Q11 with the S9 `size` script field |
//! | `set_upload_status` | `POST /.fleet-fileds-fromhost-meta-<src>/_update_by_query` with script S8 |
//! | `delete_chunks` | `POST /.fleet-fileds-fromhost-data-<src>/_delete_by_query` `term bid` |
//! | `list_uploads`, `upload_doc` | `POST /_msearch` on `.fleet-fileds-fromhost-meta-*` (for the operator) |
//! | `read_chunk` | `POST /_msearch` `term _id` on the data stream, `_source` `data` (base64 in JSON) |

use base64::Engine;
use serde_json::{json, Map, Value};

use super::bodies::{encode, Header, Op};
use super::client::{item_error, Method, Req};
use super::keys::decode_failed;
use super::store::BulkOp;
use super::EsStore;
use crate::backend::files::{ChunkInfo, ChunkWrite, FileStatus, FileStore, UploadInfo};
use crate::backend::StoreError;

/// The metadata data streams of every source.
const META_ALL: &str = ".fleet-fileds-fromhost-meta-*";

fn meta_index(source: &str) -> String {
    format!(".fleet-fileds-fromhost-meta-{source}")
}

fn data_index(source: &str) -> String {
    format!(".fleet-fileds-fromhost-data-{source}")
}

/// Script S8 (`internal/pkg/file/uploader/es.go`).
const S8: &str = "ctx._source.file.Status = params.status; if (params.hash != '') { ctx._source.transithash = ['sha256': params.hash]; }";

/// Script S9: a chunk's decoded byte length.
const S9: &str = "params._source.data.length";

/// A CBOR text string.
fn text(out: &mut Vec<u8>, s: &str) {
    head(out, 3, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// A CBOR head of `major` with argument `n`, shortest form.
fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend([m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend((n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend((n as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend(n.to_be_bytes());
        }
    }
}

/// The chunk document Fleet Server's `cbor.ChunkEncoder` writes: a map of five keys,
/// `@timestamp` as a uint64, `last`, `bid`, `sha2` (text; Go writes them with a one-byte length,
/// `0x78 n`) and `data`: a byte string with a 32-bit length (`0x5a`) for every chunk but the
/// last, an indefinite-length byte string (`0x5f`, pieces with 32-bit lengths, `0xff`) for the
/// last.
pub fn chunk_document(
    timestamp_ms: u64,
    last: bool,
    bid: &str,
    sha2: &str,
    data: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + bid.len() + sha2.len() + 64);
    out.push(0xa5);
    text(&mut out, "@timestamp");
    out.push(0x1b);
    out.extend(timestamp_ms.to_be_bytes());
    text(&mut out, "last");
    out.push(if last { 0xf5 } else { 0xf4 });
    let go_string = |out: &mut Vec<u8>, value: &str| match u8::try_from(value.len()) {
        Ok(n) => {
            out.extend([0x78, n]);
            out.extend_from_slice(value.as_bytes());
        }
        Err(_) => text(out, value),
    };
    text(&mut out, "bid");
    go_string(&mut out, bid);
    text(&mut out, "sha2");
    go_string(&mut out, sha2);
    text(&mut out, "data");
    let piece = |out: &mut Vec<u8>, bytes: &[u8]| {
        out.push(0x5a);
        out.extend((bytes.len() as u32).to_be_bytes());
        out.extend_from_slice(bytes);
    };
    if last {
        out.push(0x5f);
        if !data.is_empty() {
            piece(&mut out, data);
        }
        out.push(0xff);
    } else {
        piece(&mut out, data);
    }
    out
}

impl EsStore {
    fn meta_hits(&self, query: Value) -> Result<Vec<Value>, StoreError> {
        self.hits("/_msearch", META_ALL, Header::Plain, &query)
    }
}

fn hit_doc(hit: &Value) -> Option<(String, Map<String, Value>)> {
    Some((
        hit["_id"].as_str()?.to_owned(),
        hit.get("_source")?.as_object()?.clone(),
    ))
}

/// The first entry of a `fields` array.
fn field<'a>(hit: &'a Value, name: &str) -> Option<&'a Value> {
    hit.get("fields")?.get(name)?.get(0)
}

impl FileStore for EsStore {
    fn create_upload(&self, info: &UploadInfo, doc: &Map<String, Value>) -> Result<(), StoreError> {
        let index = meta_index(&info.source);
        let items = self.bulk(
            true,
            &[BulkOp::new(
                Op::Create,
                &info.doc_id,
                &index,
                Some(Value::Object(doc.clone())),
            )],
        )?;
        match items.first() {
            Some(i) if matches!(i.status, 200 | 201) => Ok(()),
            Some(i) if i.status == 409 => Err(StoreError::Conflict),
            Some(i) => Err(item_error(i.status, &i.raw)),
            None => Err(decode_failed("bulk response", "no item")),
        }
    }

    fn upload(&self, upload_id: &str) -> Result<Option<UploadInfo>, StoreError> {
        let hits = self.meta_hits(json!({"query": {"term": {"upload_id": upload_id}}}))?;
        if hits.len() > 1 {
            return Err(StoreError::Failed {
                status: 500,
                detail: format!(
                    "unable to locate upload record, got {} records, expected 1",
                    hits.len()
                ),
            });
        }
        Ok(hits
            .first()
            .and_then(hit_doc)
            .and_then(|(id, doc)| UploadInfo::from_doc(&id, &doc)))
    }

    fn write_chunk(&self, info: &UploadInfo, chunk: &ChunkWrite<'_>) -> Result<(), StoreError> {
        let id = format!("{}.{}", info.doc_id, chunk.pos);
        let body = chunk_document(
            u64::try_from(chunk.timestamp_ms).unwrap_or(0),
            chunk.last,
            &info.doc_id,
            chunk.sha2,
            chunk.data,
        );
        let req = Req {
            body: Some(body),
            content_type: Some("application/cbor"),
            accept_json: true,
            ..Req::new(
                Method::Put,
                format!("/{}/_create/{}", data_index(&info.source), encode(&id)),
            )
            .long_poll()
        };
        let resp = self.client.call(&req, &[409])?;
        if resp.status == 409 {
            return Err(StoreError::Conflict);
        }
        Ok(())
    }

    fn chunk_infos(&self, info: &UploadInfo) -> Result<Vec<ChunkInfo>, StoreError> {
        let index = data_index(&info.source);
        self.client.call(
            &Req::new(Method::Post, format!("/{index}/_refresh")),
            &[404],
        )?;
        let query = json!({"_source": false, "fields": ["sha2", "last", "bid"],
            "query": {"term": {"bid": info.doc_id}}, "size": 10000,
            "script_fields": {"size": {"script": {"lang": "painless", "source": S9}}}});
        let hits = self.hits("/_msearch", &index, Header::Plain, &query)?;
        let mut out = Vec::with_capacity(hits.len());
        for hit in &hits {
            let id = hit["_id"].as_str().unwrap_or_default();
            let bid = field(hit, "bid").and_then(Value::as_str).ok_or_else(|| {
                decode_failed("chunk", "unable to retrieve bid field from chunk document")
            })?;
            let pos = id
                .strip_prefix(bid)
                .and_then(|rest| rest.strip_prefix('.'))
                .and_then(|n| n.parse::<u64>().ok())
                .ok_or_else(|| {
                    decode_failed(
                        "chunk",
                        format!("unable to parse chunk number from id {id}"),
                    )
                })?;
            let sha2 = field(hit, "sha2").and_then(Value::as_str).ok_or_else(|| {
                decode_failed("chunk", "unable to retrieve sha2 field from chunk document")
            })?;
            let size = field(hit, "size").and_then(Value::as_u64).ok_or_else(|| {
                decode_failed("chunk", "unable to retrieve size from chunk document")
            })?;
            out.push(ChunkInfo {
                pos,
                last: field(hit, "last").and_then(Value::as_bool).unwrap_or(false),
                sha2: sha2.to_owned(),
                size,
            });
        }
        Ok(out)
    }

    fn set_upload_status(
        &self,
        info: &UploadInfo,
        status: FileStatus,
        hash: Option<&str>,
    ) -> Result<(), StoreError> {
        let body = json!({"query": {"term": {"_id": info.doc_id}},
            "script": {"lang": "painless", "params": {"hash": hash.unwrap_or(""), "status": status.as_str()},
                "source": S8}});
        let req = Req::new(
            Method::Post,
            format!("/{}/_update_by_query", meta_index(&info.source)),
        )
        .json(&body);
        self.client.call(&req, &[])?;
        Ok(())
    }

    fn delete_chunks(&self, info: &UploadInfo) -> Result<(), StoreError> {
        let body = json!({"query": {"term": {"bid": info.doc_id}}});
        let req = Req::new(
            Method::Post,
            format!("/{}/_delete_by_query", data_index(&info.source)),
        )
        .json(&body);
        self.client.call(&req, &[404])?;
        Ok(())
    }

    fn list_uploads(&self, agent_id: Option<&str>) -> Result<Vec<Map<String, Value>>, StoreError> {
        let query = match agent_id {
            Some(a) => json!({"query": {"term": {"agent_id": a}}, "size": 1000}),
            None => json!({"query": {"match_all": {}}, "size": 1000}),
        };
        Ok(crate::backend::files::listing(
            self.meta_hits(query)?.iter().filter_map(hit_doc),
        ))
    }

    fn upload_doc(&self, doc_id: &str) -> Result<Option<Map<String, Value>>, StoreError> {
        let hits = self.meta_hits(json!({"query": {"term": {"_id": doc_id}}}))?;
        Ok(hits.first().and_then(hit_doc).map(|(_, doc)| doc))
    }

    fn read_chunk(&self, info: &UploadInfo, pos: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let id = format!("{}.{pos}", info.doc_id);
        let hits = self.hits(
            "/_msearch",
            &data_index(&info.source),
            Header::Plain,
            &json!({"_source": ["data"], "query": {"term": {"_id": id}}}),
        )?;
        let Some(data) = hits.first().and_then(|h| h.pointer("/_source/data")) else {
            return Ok(None);
        };
        let text = data.as_str().unwrap_or_default();
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map(Some)
            .map_err(|e| decode_failed("chunk data", e))
    }

    fn delivery_meta(
        &self,
        file_id: &str,
        from: crate::backend::delivery::DeliveryFrom<'_>,
    ) -> Result<Option<Map<String, Value>>, StoreError> {
        self.delivery_meta_es(file_id, from)
    }

    fn delivery_bytes(
        &self,
        file_id: &str,
        from: crate::backend::delivery::DeliveryFrom<'_>,
    ) -> Result<crate::backend::delivery::DeliveryBytes, StoreError> {
        self.delivery_bytes_es(file_id, from)
    }

    fn read_part(&self, locator: &str) -> Result<Vec<u8>, StoreError> {
        self.read_part_es(locator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_documents_are_byte_for_byte_fleet_servers() {
        let doc = chunk_document(0x0102, false, "a.b", "ff", &[9, 8]);
        let mut want = vec![0xa5, 0x6a];
        want.extend(b"@timestamp");
        want.extend([0x1b, 0, 0, 0, 0, 0, 0, 1, 2, 0x64]);
        want.extend(b"last");
        want.extend([0xf4, 0x63]);
        want.extend(b"bid");
        want.extend([0x78, 3]);
        want.extend(b"a.b");
        want.push(0x64);
        want.extend(b"sha2");
        want.extend([0x78, 2]);
        want.extend(b"ff");
        want.push(0x64);
        want.extend(b"data");
        want.extend([0x5a, 0, 0, 0, 2, 9, 8]);
        assert_eq!(doc, want);
        let last = chunk_document(0x0102, true, "a.b", "ff", &[7]);
        assert_eq!(last[26], 0xf5, "last: true");
        assert!(last.ends_with(&[0x64, b'd', b'a', b't', b'a', 0x5f, 0x5a, 0, 0, 0, 1, 7, 0xff]));
    }
}
