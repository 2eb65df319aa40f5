//! Elastic Defend artifacts in embedded mode: `.fleet-artifacts` documents as Kibana writes them,
//! kept one JSON file each under `<data-dir>/endpoint-artifacts/<identifier>/<decoded_sha256>.json`
//! (the local store reads them for `GET /api/fleet/artifacts/{id}/{sha2}`). `fleet-edge artifacts
//! add-endpoint FILE` checks a document before installing it: its body decodes, the encoded bytes
//! match `encoded_sha256` and, decompressed, `decoded_sha256`.

use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;

use crate::model::Artifact;

/// Why an artifact document cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// The file cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Not a `.fleet-artifacts` document.
    #[error("{0}")]
    Invalid(String),
}

/// Whether `sha` is a SHA-256 in lower- or upper-case hex.
pub fn is_sha256_hex(sha: &str) -> bool {
    sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The file of an artifact, when identifier and digest can name one (no path tricks).
pub fn artifact_path(dir: &Path, identifier: &str, decoded_sha256: &str) -> Option<PathBuf> {
    let plain_identifier = !identifier.is_empty()
        && !identifier.starts_with('.')
        && identifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    (plain_identifier && is_sha256_hex(decoded_sha256)).then(|| {
        dir.join(identifier)
            .join(format!("{}.json", decoded_sha256.to_ascii_lowercase()))
    })
}

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The encoded bytes of `artifact` when its body decodes and matches `encoded_sha256` (what an
/// artifact download serves).
pub fn encoded_bytes(artifact: &Artifact) -> Result<Vec<u8>, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(artifact.body.trim())
        .map_err(|e| format!("artifact body is not base64: {e}"))?;
    if !sha256_hex(&bytes).eq_ignore_ascii_case(&artifact.encoded_sha256) {
        return Err("mismatched sha256".into());
    }
    Ok(bytes)
}

/// Checks a document completely: body, both digests (decompressing `zlib`), identifier.
pub fn check(artifact: &Artifact) -> Result<(), EndpointError> {
    let invalid = |m: String| EndpointError::Invalid(m);
    if artifact_path(
        Path::new(""),
        &artifact.identifier,
        &artifact.decoded_sha256,
    )
    .is_none()
    {
        return Err(invalid(format!(
            "identifier {:?} and decoded_sha256 {:?} must be a plain name and a SHA-256 in hex",
            artifact.identifier, artifact.decoded_sha256
        )));
    }
    let encoded = encoded_bytes(artifact)
        .map_err(|e| invalid(format!("{e} (encoded_sha256 {})", artifact.encoded_sha256)))?;
    let decoded = match artifact.compression_algorithm.as_str() {
        "zlib" => {
            let mut out = Vec::new();
            flate2::read::ZlibDecoder::new(encoded.as_slice())
                .take(1 << 30)
                .read_to_end(&mut out)
                .map_err(|e| invalid(format!("the body is not zlib data: {e}")))?;
            out
        }
        "none" | "" => encoded,
        other => {
            return Err(invalid(format!(
                "compression_algorithm {other:?} is not zlib or none"
            )))
        }
    };
    if !sha256_hex(&decoded).eq_ignore_ascii_case(&artifact.decoded_sha256) {
        return Err(invalid(format!(
            "the decoded content's SHA-256 is {}, not decoded_sha256 {}",
            sha256_hex(&decoded),
            artifact.decoded_sha256
        )));
    }
    Ok(())
}

/// Installs the artifact document in `source` (JSON, Kibana's shape) under `dir`; its path.
pub fn add(dir: &Path, source: &Path) -> Result<PathBuf, EndpointError> {
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |source| EndpointError::Io { path, source }
    };
    let text = std::fs::read(source).map_err(io_err(source))?;
    let artifact: Artifact = serde_json::from_slice(&text).map_err(|e| {
        EndpointError::Invalid(format!(
            "{}: not a JSON artifact document: {e}",
            source.display()
        ))
    })?;
    check(&artifact)?;
    let path = artifact_path(dir, &artifact.identifier, &artifact.decoded_sha256)
        .ok_or_else(|| EndpointError::Invalid("unusable identifier".into()))?;
    let parent = path.parent().unwrap_or(dir);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(parent)
        .map_err(io_err(parent))?;
    let tmp = parent.join(".artifact.partial");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    let body =
        serde_json::to_vec_pretty(&artifact).map_err(|e| EndpointError::Invalid(e.to_string()))?;
    file.write_all(&body).map_err(io_err(&tmp))?;
    file.sync_all().map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
    Ok(path)
}

/// A valid zlib artifact document of `content` (tests and examples).
pub fn document(identifier: &str, content: &[u8]) -> Artifact {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    let encoded = encoder
        .write_all(content)
        .and_then(|()| encoder.finish())
        .unwrap_or_default();
    Artifact {
        identifier: identifier.to_owned(),
        compression_algorithm: "zlib".into(),
        encryption_algorithm: "none".into(),
        encoded_sha256: sha256_hex(&encoded),
        encoded_size: encoded.len() as i64,
        decoded_sha256: sha256_hex(content),
        decoded_size: content.len() as i64,
        created: "2026-12-03T08:00:00.000Z".into(),
        body: base64::engine::general_purpose::STANDARD.encode(&encoded),
        package_name: "endpoint".into(),
        other: serde_json::Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_checked_and_paths_stay_inside() {
        let doc = document("endpoint-exceptionlist-linux-v1", br#"{"entries":[]}"#);
        check(&doc).unwrap();
        let mut bad = doc.clone();
        bad.encoded_sha256 = "0".repeat(64);
        assert!(check(&bad).is_err());
        let mut bad = doc.clone();
        bad.decoded_sha256 = "1".repeat(64);
        assert!(check(&bad).is_err());
        let mut bad = doc.clone();
        bad.body = "!!".into();
        assert!(check(&bad).is_err());
        let dir = Path::new("/d");
        assert!(artifact_path(dir, "../x", &doc.decoded_sha256).is_none());
        assert!(artifact_path(dir, "a/b", &doc.decoded_sha256).is_none());
        assert!(artifact_path(dir, "x", "abc").is_none());
        assert_eq!(
            artifact_path(dir, "x", &doc.decoded_sha256).unwrap(),
            dir.join("x").join(format!("{}.json", doc.decoded_sha256))
        );
    }
}
