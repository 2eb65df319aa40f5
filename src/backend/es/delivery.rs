//! File delivery reads on Elasticsearch (es-contract.md §2.5.4 Q12, §2.9), as Fleet Server's
//! `internal/pkg/file/delivery` makes them:
//!
//! | step | call |
//! |---|---|
//! | metadata for an agent | `POST /_msearch` Q12 on `.fleet-fileds-tohost-meta-*` (`_id`, `file.Meta.target_agents`, `file.Status: READY`) |
//! | metadata in a library | `POST /_mget` of `.<integration>-fleetfiles-<source>-meta` / `<id>` |
//! | chunks | `POST /_msearch` on `.fleet-fileds-tohost-data-*` (or the library's `-data`): `_source: false`, `fields` `sha2`, `last`, `bid`, `term bid`, size 10000; sorted by the position in `<bid>.<n>` |
//! | one chunk | `GET /<backing index>/_doc/<id>?_source=false&stored_fields=data` with `Accept: application/cbor`; the bytes are `fields.data[0]` |

use serde_json::{json, Map, Value};

use super::bodies::{encode, Header};
use super::client::{Method, Req};
use super::keys::decode_failed;
use super::EsStore;
use crate::backend::delivery::{DeliveryBytes, DeliveryFrom};
use crate::backend::StoreError;

const TOHOST_META: &str = ".fleet-fileds-tohost-meta-*";
const TOHOST_DATA: &str = ".fleet-fileds-tohost-data-*";

fn library(integration: &str, source: &str, kind: &str) -> String {
    format!(".{integration}-fleetfiles-{source}-{kind}")
}

/// Q12.
pub fn q_file_for_agent(file_id: &str, agent_id: &str) -> Value {
    json!({"query": {"bool": {"must": [
        {"term": {"_id": file_id}},
        {"term": {"file.Meta.target_agents": agent_id}},
        {"term": {"file.Status": "READY"}}
    ]}}})
}

/// The chunk-info query without the size script (`QueryChunkInfo`).
pub fn q_chunk_infos(bid: &str) -> Value {
    json!({"_source": false, "fields": ["sha2", "last", "bid"], "query": {"term": {"bid": bid}}, "size": 10000})
}

impl EsStore {
    pub(super) fn delivery_meta_es(
        &self,
        file_id: &str,
        from: DeliveryFrom<'_>,
    ) -> Result<Option<Map<String, Value>>, StoreError> {
        match from {
            DeliveryFrom::Agent(agent) => {
                let hits = self.hits(
                    "/_msearch",
                    TOHOST_META,
                    Header::Plain,
                    &q_file_for_agent(file_id, agent),
                )?;
                Ok(hits
                    .first()
                    .and_then(|h| h.get("_source"))
                    .and_then(Value::as_object)
                    .cloned())
            }
            DeliveryFrom::Library {
                integration,
                source,
            } => {
                let index = library(integration, source, "meta");
                let req =
                    Req::new(Method::Post, "/_mget").raw(super::bodies::mget(&index, file_id));
                let mut v = self.client.call(&req, &[])?.json();
                let doc = v
                    .pointer_mut("/docs/0")
                    .map(Value::take)
                    .unwrap_or_default();
                if doc["found"].as_bool() != Some(true) {
                    // bulker.Read answers a missing document with an error, not an empty one.
                    return Err(StoreError::Failed {
                        status: 404,
                        detail: format!("no document {file_id} in {index}"),
                    });
                }
                Ok(Some(
                    doc.get("_source")
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default(),
                ))
            }
        }
    }

    pub(super) fn delivery_bytes_es(
        &self,
        file_id: &str,
        from: DeliveryFrom<'_>,
    ) -> Result<DeliveryBytes, StoreError> {
        let index = match from {
            DeliveryFrom::Agent(_) => TOHOST_DATA.to_owned(),
            DeliveryFrom::Library {
                integration,
                source,
            } => library(integration, source, "data"),
        };
        let hits = self.hits("/_msearch", &index, Header::Plain, &q_chunk_infos(file_id))?;
        let mut chunks = Vec::with_capacity(hits.len());
        for hit in &hits {
            let bid = hit
                .pointer("/fields/bid/0")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    decode_failed("chunk", "unable to retrieve bid field from chunk document")
                })?;
            let id = hit["_id"].as_str().unwrap_or_default();
            let pos: u64 = id
                .strip_prefix(bid)
                .and_then(|r| r.strip_prefix('.'))
                .unwrap_or(id)
                .parse()
                .map_err(|e| decode_failed(&format!("chunk number from id {id}"), e))?;
            let backing = hit["_index"].as_str().unwrap_or_default();
            chunks.push((pos, format!("{backing}\u{1f}{id}")));
        }
        chunks.sort_by_key(|(pos, _)| *pos);
        Ok(DeliveryBytes::Chunks(
            chunks.into_iter().map(|(_, l)| l).collect(),
        ))
    }

    pub(super) fn read_part_es(&self, locator: &str) -> Result<Vec<u8>, StoreError> {
        let (index, id) = locator
            .split_once('\u{1f}')
            .ok_or_else(|| decode_failed("chunk locator", locator))?;
        let req = Req {
            accept_cbor: true,
            ..Req::new(
                Method::Get,
                format!(
                    "/{}/_doc/{}?_source=false&stored_fields=data",
                    encode(index),
                    encode(id)
                ),
            )
        };
        let resp = self.client.call(&req, &[])?;
        chunk_data(&resp.body).ok_or_else(|| {
            decode_failed("chunk", "no fields.data[0] byte string in the CBOR answer")
        })
    }
}

/// `fields.data[0]` of a CBOR get answer (`cbor.ChunkDecoder`): definite or indefinite byte
/// strings; `None` when the answer has no such value.
pub fn chunk_data(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut r = Cbor { b: bytes, at: 0 };
    let fields = r.map_entry("fields")?;
    r.at = fields;
    let data = r.map_entry("data")?;
    r.at = data;
    let (major, n) = r.head()?;
    if major != 4 || n == Some(0) {
        return None;
    }
    let (major, n) = r.head()?;
    if major != 2 {
        return None;
    }
    r.string(n)
}

struct Cbor<'a> {
    b: &'a [u8],
    at: usize,
}

impl Cbor<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.b.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    /// Major type and argument (`None`: indefinite length).
    fn head(&mut self) -> Option<(u8, Option<u64>)> {
        let b = self.byte()?;
        let (major, info) = (b >> 5, b & 0x1f);
        let n = match info {
            0..=23 => Some(u64::from(info)),
            24..=27 => {
                let len = 1usize << (info - 24);
                let bytes = self.b.get(self.at..self.at + len)?;
                self.at += len;
                Some(bytes.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x)))
            }
            31 => None,
            _ => return None,
        };
        Some((major, n))
    }

    /// A byte or text string's bytes, after its head.
    fn string(&mut self, n: Option<u64>) -> Option<Vec<u8>> {
        match n {
            Some(n) => {
                let n = usize::try_from(n).ok()?;
                let s = self.b.get(self.at..self.at.checked_add(n)?)?.to_vec();
                self.at += n;
                Some(s)
            }
            None => {
                let mut out = Vec::new();
                while self.b.get(self.at) != Some(&0xff) {
                    let (_, n) = self.head()?;
                    out.extend(self.string(Some(n?))?);
                }
                self.at += 1;
                Some(out)
            }
        }
    }

    /// Skips one value (depth-bounded).
    fn skip(&mut self, depth: usize) -> Option<()> {
        if depth > 32 {
            return None;
        }
        let (major, n) = self.head()?;
        match major {
            0 | 1 | 7 => Some(()),
            2 | 3 => self.string(n).map(|_| ()),
            4 | 5 => {
                let per = if major == 5 { 2 } else { 1 };
                match n {
                    Some(n) => {
                        for _ in 0..n.checked_mul(per)? {
                            self.skip(depth + 1)?;
                        }
                    }
                    None => {
                        while self.b.get(self.at) != Some(&0xff) {
                            self.skip(depth + 1)?;
                        }
                        self.at += 1;
                    }
                }
                Some(())
            }
            6 => self.skip(depth + 1),
            _ => None,
        }
    }

    /// Reads the map at the cursor and returns the position of `key`'s value.
    fn map_entry(&mut self, key: &str) -> Option<usize> {
        let (major, n) = self.head()?;
        if major != 5 {
            return None;
        }
        let mut left = n;
        loop {
            match left {
                Some(0) => return None,
                Some(k) => left = Some(k - 1),
                None if self.b.get(self.at) == Some(&0xff) => return None,
                None => {}
            }
            let (kmajor, kn) = self.head()?;
            let name = if kmajor == 3 {
                self.string(kn)?
            } else {
                return None;
            };
            if name == key.as_bytes() {
                return Some(self.at);
            }
            self.skip(0)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleet_servers_sample_chunk_answer_decodes() {
        // handleFileDelivery_test.go's sampleDocBody_ABCD.
        let hex = "A7665F696E64657878212E666C6565742D66696C6564656C69766572792D646174612D656E64706F696E74635F69646578797A2E30685F76657273696F6E01675F7365715F6E6F016D5F7072696D6172795F7465726D0165666F756E64F5666669656C6473A164646174618142ABCD";
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(chunk_data(&bytes), Some(vec![0xab, 0xcd]));
        assert_eq!(chunk_data(&bytes[..bytes.len() - 1]), None, "truncated");
        assert_eq!(chunk_data(&[0xa0]), None, "no fields");
    }
}
