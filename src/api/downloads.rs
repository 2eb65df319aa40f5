//! The artifact mirror's answers (issue 17), sans-IO: `GET`/`HEAD /downloads/<path>` laid out as
//! Elastic's artifact site, no authentication. The lookup itself (`files::mirror::open`) runs on a
//! backend worker; from what it found this file makes the response: 404 text for anything not
//! served, `304` for a matching `If-None-Match`, a single `Range` → `206` with `Content-Range`,
//! an unsatisfiable or malformed one → `416` with `Content-Range: bytes */size` (several ranges
//! are answered whole, which RFC 9110 §14.2 allows), `If-Range` honoured, and always
//! `Accept-Ranges`, `Content-Length`, `Last-Modified` and a strong `ETag` (mtime and size). The
//! body is a [`Body::File`]: the connection streams it from the file.

use std::path::PathBuf;

pub use crate::files::mirror::DownloadRequest;
use crate::files::mirror::{MirrorError, Opened};
use crate::http::{Body, FileBody, HttpDate, Method, Request, Response};

/// The URL prefix of the mirror on the agent listener.
pub const PREFIX: &str = "/downloads/";

/// The mirror request of `req` (whose path starts with [`PREFIX`]) against `root`.
pub fn request(req: &Request, root: PathBuf) -> DownloadRequest {
    let header = |name| req.header_str(name).map(str::to_owned);
    DownloadRequest {
        root,
        path: req.path.strip_prefix(PREFIX).unwrap_or_default().to_owned(),
        range: header("range").filter(|_| req.method == Method::Get || req.method == Method::Head),
        if_range: header("if-range"),
        if_none_match: header("if-none-match"),
    }
}

/// How a `Range` header applies to a file of some size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAnswer {
    /// Send the whole file (no range, or several).
    Full,
    /// Send `len` bytes from `start`.
    Partial {
        /// First byte.
        start: u64,
        /// Bytes sent.
        len: u64,
    },
    /// 416.
    Unsatisfiable,
}

/// Applies a `Range` header value to a file of `size` bytes.
pub fn parse_range(value: &str, size: u64) -> RangeAnswer {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeAnswer::Unsatisfiable;
    };
    if spec.contains(',') {
        return RangeAnswer::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeAnswer::Unsatisfiable;
    };
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    match (first.trim(), last.trim()) {
        ("", suffix) => match number(suffix) {
            Some(n) if n > 0 && size > 0 => {
                let len = n.min(size);
                RangeAnswer::Partial {
                    start: size - len,
                    len,
                }
            }
            _ => RangeAnswer::Unsatisfiable,
        },
        (first, "") => match number(first) {
            Some(start) if start < size => RangeAnswer::Partial {
                start,
                len: size - start,
            },
            _ => RangeAnswer::Unsatisfiable,
        },
        (first, last) => match (number(first), number(last)) {
            (Some(start), Some(end)) if start <= end && start < size => RangeAnswer::Partial {
                start,
                len: end.min(size - 1) - start + 1,
            },
            _ => RangeAnswer::Unsatisfiable,
        },
    }
}

/// The strong entity tag of a file version: modification time (ns) and size, hex.
pub fn etag(opened: &Opened) -> String {
    format!(
        "\"{:x}.{:09}-{:x}\"",
        opened.modified_secs, opened.modified_nanos, opened.size
    )
}

fn content_type(name: &str) -> &'static str {
    if name.ends_with(".sha512") || name.ends_with(".asc") || name.ends_with(".txt") {
        "text/plain; charset=utf-8"
    } else if name.ends_with(".json") {
        "application/json"
    } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        "application/gzip"
    } else if name.ends_with(".zip") {
        "application/zip"
    } else {
        "application/octet-stream"
    }
}

/// `If-None-Match` / `If-Range` list matching (strong comparison; `*` matches any).
fn tag_matches(header: &str, tag: &str) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|candidate| candidate == "*" || candidate == tag)
}

/// The response to a mirror request, from what the lookup found.
pub fn answer(req: &DownloadRequest, found: Result<Opened, MirrorError>) -> Response {
    let opened = match found {
        Ok(opened) => opened,
        Err(MirrorError::NotFound) => return super::not_found(),
        Err(MirrorError::Io(e)) => {
            log::warn!("mirror: {}: {e}", req.path);
            return super::errors::respond(&super::ApiError::Internal(
                "the file cannot be read".into(),
            ));
        }
    };
    let tag = etag(&opened);
    let last_modified = HttpDate::from_unix_seconds(opened.modified_secs);
    let validators = |response: Response| {
        response
            .with_header("Accept-Ranges", "bytes")
            .with_header("ETag", tag.clone())
            .with_header("Last-Modified", last_modified.as_str().to_owned())
    };
    if req
        .if_none_match
        .as_deref()
        .is_some_and(|h| tag_matches(h, &tag))
    {
        return validators(Response::new(304));
    }
    // If-Range: a range of an older version would corrupt a resumed download; send it whole.
    let range_applies = match req.if_range.as_deref().map(str::trim) {
        None => true,
        Some(v) => v == tag || v == last_modified.as_str(),
    };
    let range = match req.range.as_deref() {
        Some(value) if range_applies => parse_range(value, opened.size),
        _ => RangeAnswer::Full,
    };
    let file_body = |offset, len| {
        Body::File(FileBody {
            file: opened.file.clone(),
            offset,
            len,
        })
    };
    let typed = |status| {
        validators(Response::new(status)).with_header("Content-Type", content_type(&opened.name))
    };
    match range {
        RangeAnswer::Full => typed(200).with_body(file_body(0, opened.size)),
        RangeAnswer::Partial { start, len } => typed(206)
            .with_header(
                "Content-Range",
                format!("bytes {start}-{}/{}", start + len - 1, opened.size),
            )
            .with_body(file_body(start, len)),
        RangeAnswer::Unsatisfiable => validators(Response::text(416, "range not satisfiable\n"))
            .with_header("Content-Range", format!("bytes */{}", opened.size)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        use RangeAnswer::*;
        let p = |start, len| Partial { start, len };
        assert_eq!(parse_range("bytes=0-0", 10), p(0, 1));
        assert_eq!(parse_range("bytes=2-5", 10), p(2, 4));
        assert_eq!(parse_range("bytes=2-100", 10), p(2, 8));
        assert_eq!(parse_range("bytes=7-", 10), p(7, 3));
        assert_eq!(parse_range("bytes=-3", 10), p(7, 3));
        assert_eq!(parse_range("bytes=-30", 10), p(0, 10));
        assert_eq!(parse_range("bytes=0-1,4-5", 10), Full);
        for bad in [
            "bytes=10-",
            "bytes=10-20",
            "bytes=5-2",
            "bytes=-0",
            "bytes=a-b",
            "bytes=1",
            "items=0-1",
            "bytes=+1-2",
            "bytes=99999999999999999999999-",
        ] {
            assert_eq!(parse_range(bad, 10), Unsatisfiable, "{bad}");
        }
        assert_eq!(parse_range("bytes=0-", 0), Unsatisfiable);
    }

    fn opened(size: u64) -> Opened {
        Opened {
            file: std::sync::Arc::new(std::fs::File::open("Cargo.toml").unwrap()),
            size,
            modified_secs: 1_796_275_853,
            modified_nanos: 5,
            name: "elastic-agent-9.6.0-linux-arm64.tar.gz".into(),
        }
    }

    fn request(range: Option<&str>, if_range: Option<&str>, inm: Option<&str>) -> DownloadRequest {
        DownloadRequest {
            root: PathBuf::from("/nonexistent"),
            path: "beats/x".into(),
            range: range.map(str::to_owned),
            if_range: if_range.map(str::to_owned),
            if_none_match: inm.map(str::to_owned),
        }
    }

    #[test]
    fn answers_carry_validators_and_the_file_range() {
        let o = opened(1000);
        let tag = etag(&o);
        let full = answer(&request(None, None, None), Ok(o.clone()));
        assert_eq!(full.status, 200);
        assert_eq!(full.header("etag"), Some(tag.as_str()));
        assert_eq!(
            full.header("last-modified"),
            Some("Thu, 03 Dec 2026 05:30:53 GMT")
        );
        assert_eq!(full.header("accept-ranges"), Some("bytes"));
        assert_eq!(full.header("content-type"), Some("application/gzip"));
        assert!(matches!(&full.body, Body::File(f) if f.offset == 0 && f.len == 1000));

        let part = answer(&request(Some("bytes=100-"), None, None), Ok(o.clone()));
        assert_eq!(part.status, 206);
        assert_eq!(part.header("content-range"), Some("bytes 100-999/1000"));
        assert!(matches!(&part.body, Body::File(f) if f.offset == 100 && f.len == 900));

        let stale = answer(
            &request(Some("bytes=100-"), Some("\"old\""), None),
            Ok(o.clone()),
        );
        assert_eq!(stale.status, 200, "If-Range of another version: whole file");
        let same = answer(
            &request(Some("bytes=100-"), Some(&tag), None),
            Ok(o.clone()),
        );
        assert_eq!(same.status, 206);

        let bad = answer(&request(Some("bytes=1000-"), None, None), Ok(o.clone()));
        assert_eq!(bad.status, 416);
        assert_eq!(bad.header("content-range"), Some("bytes */1000"));

        let cached = answer(&request(None, None, Some(&tag)), Ok(o));
        assert_eq!(cached.status, 304);
        assert_eq!(cached.body, Body::Empty);

        let missing = answer(&request(None, None, None), Err(MirrorError::NotFound));
        assert_eq!(missing.status, 404);
        assert_eq!(missing.body_bytes(), b"404 page not found\n");
    }
}
