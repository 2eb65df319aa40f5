//! CBOR request bodies (RFC 8949), as Elasticsearch accepts them with `Content-Type:
//! application/cbor`: decoded into the JSON document ES would keep as `_source`. Byte strings,
//! definite or indefinite length (Fleet Server sends the final upload chunk's `data` as an
//! indefinite-length byte string of 32-bit-length pieces), become base64 text, as ES renders a
//! binary value in a JSON `_source`. Anything malformed or truncated is a `parse_exception`.

use base64::Engine;
use serde_json::{Map, Number, Value};

use crate::error::{EsError, EsResult};

const MAX_DEPTH: usize = 64;

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

fn bad(why: &str) -> EsError {
    EsError::parsing(format!("failed to parse CBOR body: {why}"))
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> EsResult<&[u8]> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or_else(|| bad("length overflow"))?;
        let out = self
            .bytes
            .get(self.pos..end)
            .ok_or_else(|| bad("unexpected end of input"))?;
        self.pos = end;
        Ok(out)
    }

    fn byte(&mut self) -> EsResult<u8> {
        Ok(self.take(1)?[0])
    }

    /// The argument of a head byte; `None` for the indefinite-length marker (31).
    fn argument(&mut self, info: u8) -> EsResult<Option<u64>> {
        let n = match info {
            0..=23 => return Ok(Some(u64::from(info))),
            24 => 1,
            25 => 2,
            26 => 4,
            27 => 8,
            31 => return Ok(None),
            _ => return Err(bad("reserved additional information")),
        };
        let mut v = 0u64;
        for b in self.take(n)? {
            v = (v << 8) | u64::from(*b);
        }
        Ok(Some(v))
    }

    fn len(&mut self, info: u8) -> EsResult<Option<usize>> {
        match self.argument(info)? {
            Some(n) => usize::try_from(n)
                .map(Some)
                .map_err(|_| bad("length too large")),
            None => Ok(None),
        }
    }

    /// A byte or text string's bytes (indefinite: the concatenation of its definite pieces).
    fn string(&mut self, major: u8, info: u8) -> EsResult<Vec<u8>> {
        if let Some(n) = self.len(info)? {
            return Ok(self.take(n)?.to_vec());
        }
        let mut out = Vec::new();
        loop {
            let head = self.byte()?;
            if head == 0xff {
                return Ok(out);
            }
            if head >> 5 != major {
                return Err(bad("indefinite string piece of another type"));
            }
            let n = self
                .len(head & 0x1f)?
                .ok_or_else(|| bad("nested indefinite string"))?;
            out.extend_from_slice(self.take(n)?);
        }
    }

    fn value(&mut self, depth: usize) -> EsResult<Value> {
        if depth > MAX_DEPTH {
            return Err(bad("nested too deeply"));
        }
        let head = self.byte()?;
        let (major, info) = (head >> 5, head & 0x1f);
        Ok(match major {
            0 => Value::from(
                self.argument(info)?
                    .ok_or_else(|| bad("indefinite integer"))?,
            ),
            1 => {
                let n = self
                    .argument(info)?
                    .ok_or_else(|| bad("indefinite integer"))?;
                match i64::try_from(n) {
                    Ok(n) => Value::from(-1 - n),
                    Err(_) => return Err(bad("negative integer out of range")),
                }
            }
            2 => Value::String(
                base64::engine::general_purpose::STANDARD.encode(self.string(2, info)?),
            ),
            3 => Value::String(
                String::from_utf8(self.string(3, info)?).map_err(|_| bad("text is not UTF-8"))?,
            ),
            4 => {
                let mut items = Vec::new();
                match self.len(info)? {
                    Some(n) => {
                        for _ in 0..n {
                            items.push(self.value(depth + 1)?);
                        }
                    }
                    None => loop {
                        if self.bytes.get(self.pos) == Some(&0xff) {
                            self.pos += 1;
                            break;
                        }
                        items.push(self.value(depth + 1)?);
                    },
                }
                Value::Array(items)
            }
            5 => {
                let mut map = Map::new();
                let n = self.len(info)?;
                let mut i = 0;
                loop {
                    match n {
                        Some(n) if i == n => break,
                        None if self.bytes.get(self.pos) == Some(&0xff) => {
                            self.pos += 1;
                            break;
                        }
                        _ => {}
                    }
                    let key = match self.value(depth + 1)? {
                        Value::String(s) => s,
                        _ => return Err(bad("map key is not text")),
                    };
                    let v = self.value(depth + 1)?;
                    map.insert(key, v);
                    i += 1;
                }
                Value::Object(map)
            }
            6 => {
                self.argument(info)?;
                self.value(depth + 1)?
            }
            _ => match info {
                20 => Value::Bool(false),
                21 => Value::Bool(true),
                22 | 23 => Value::Null,
                25 => return Err(bad("half floats are not supported")),
                26 => {
                    let b = self.take(4)?;
                    let f = f32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                    Number::from_f64(f64::from(f)).map_or(Value::Null, Value::Number)
                }
                27 => {
                    let b = self.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    Number::from_f64(f64::from_be_bytes(a)).map_or(Value::Null, Value::Number)
                }
                _ => return Err(bad("unsupported simple value")),
            },
        })
    }
}

/// Decodes one CBOR document; trailing bytes are refused.
pub fn decode(bytes: &[u8]) -> EsResult<Value> {
    let mut r = Reader { bytes, pos: 0 };
    let v = r.value(0)?;
    if r.pos != bytes.len() {
        return Err(bad("trailing bytes after the document"));
    }
    Ok(v)
}

/// A get answer as CBOR (`Accept: application/cbor`): `fields.data` values (the binary chunk
/// field, base64 in the stored JSON) become byte strings, as Elasticsearch renders them.
pub fn encode_get(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    put(&mut out, v, false);
    out
}

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

fn put(out: &mut Vec<u8>, v: &Value, binary: bool) {
    match v {
        Value::Null => out.push(0xf6),
        Value::Bool(b) => out.push(if *b { 0xf5 } else { 0xf4 }),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => head(out, 0, u),
            (None, Some(i)) => head(out, 1, (-1 - i) as u64),
            _ => {
                out.push(0xfb);
                out.extend(n.as_f64().unwrap_or_default().to_be_bytes());
            }
        },
        Value::String(s) if binary => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s)
                .unwrap_or_else(|_| s.as_bytes().to_vec());
            head(out, 2, bytes.len() as u64);
            out.extend(bytes);
        }
        Value::String(s) => {
            head(out, 3, s.len() as u64);
            out.extend(s.as_bytes());
        }
        Value::Array(a) => {
            head(out, 4, a.len() as u64);
            for x in a {
                put(out, x, binary);
            }
        }
        Value::Object(m) => {
            head(out, 5, m.len() as u64);
            for (k, x) in m {
                head(out, 3, k.len() as u64);
                out.extend(k.as_bytes());
                let binary = binary || k == "data" && out_is_fields(m);
                put(out, x, binary);
            }
        }
    }
}

/// Whether a map is a `fields` map (it holds arrays only): its `data` is the binary field.
fn out_is_fields(m: &serde_json::Map<String, Value>) -> bool {
    m.values().all(Value::is_array)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fleet_chunk_documents_decode_with_base64_data() {
        // {"last": true, "data": indefinite bytes [01 02] [03]} with 32-bit piece lengths.
        let mut doc = vec![
            0xa2, 0x64, b'l', b'a', b's', b't', 0xf5, 0x64, b'd', b'a', b't', b'a', 0x5f,
        ];
        doc.extend([0x5a, 0, 0, 0, 2, 1, 2, 0x5a, 0, 0, 0, 1, 3, 0xff]);
        assert_eq!(decode(&doc).unwrap(), json!({"last": true, "data": "AQID"}));
        // A definite 32-bit length and a uint64 timestamp.
        let mut doc = vec![
            0xa2, 0x61, b't', 0x1b, 0, 0, 0, 0, 0, 0, 1, 0, 0x61, b'd', 0x5a, 0, 0, 0, 1, 9,
        ];
        assert_eq!(decode(&doc).unwrap(), json!({"t": 256, "d": "CQ=="}));
        doc.pop();
        assert!(decode(&doc).is_err(), "truncated");
        assert!(decode(&[0xa1, 0x01, 0x02]).is_err(), "non-text key");
    }
}
