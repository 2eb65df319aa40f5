//! File delivery's request side, `GET /api/fleet/file/{id}[?source=]` (fleet-protocol.md §8
//! "File delivery", §1.8): the path, the `source` query parameter and the
//! `X-elastic-product-origin` header, sanitized as Fleet Server sanitizes them; the decisions are
//! the job's (`backend::ops::delivery`).

use super::{auth, ApiError, Route};
use crate::backend::interface::Job;
use crate::backend::ops::delivery::{sanitize, DeliverInput};
use crate::http::{Method, Request};

const PREFIX: &str = "/api/fleet/file/";

/// Classifies `/api/fleet/file/{id}` (`None`: another path).
pub fn route<'a>(method: &Method, path: &'a str) -> Option<Route<'a>> {
    let id = path.strip_prefix(PREFIX)?;
    if id.is_empty() || id.contains('/') {
        return None;
    }
    Some(if *method == Method::Get {
        Route::FileDelivery(id)
    } else {
        Route::WrongMethod("GET")
    })
}

/// The first value of a query parameter, percent-decoded (Go's `Query().Get`).
fn query_param(query: Option<&str>, name: &str) -> String {
    query
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k) == name).then(|| percent_decode(v))
        })
        .next()
        .unwrap_or_default()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(v)) => {
                out.push(v);
                i += 2;
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The delivery job for a request.
pub fn deliver(req: &Request, file_id: &str) -> Result<Job, ApiError> {
    let key = auth::api_key(req)?;
    Ok(Job::Deliver(DeliverInput {
        key,
        file_id: percent_decode(file_id),
        source: sanitize(&query_param(req.query.as_deref(), "source")),
        product_origin: sanitize(req.header_str("x-elastic-product-origin").unwrap_or("")),
        range: req.header_str("range").map(str::to_owned),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_and_the_source_parameter() {
        assert_eq!(
            route(&Method::Get, "/api/fleet/file/abc"),
            Some(Route::FileDelivery("abc"))
        );
        assert_eq!(
            route(&Method::Post, "/api/fleet/file/abc"),
            Some(Route::WrongMethod("GET"))
        );
        assert_eq!(route(&Method::Get, "/api/fleet/file/"), None);
        assert_eq!(route(&Method::Get, "/api/fleet/file/a/b"), None);
        assert_eq!(
            query_param(Some("x=1&source=Arch%2Aive&source=two"), "source"),
            "Arch*ive"
        );
        assert_eq!(query_param(None, "source"), "");
    }
}
