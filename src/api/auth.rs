//! `Authorization: ApiKey <base64(id:key)>` parsing (fleet-protocol.md §1.4, header part). Whether
//! the key is valid is the store's question; this only turns the header into a credential or
//! into the spec's exact error.

use base64::Engine;

use super::errors::ApiError;
use crate::backend::ApiKey;
use crate::http::Request;

/// The API key a request presents.
pub fn api_key(req: &Request) -> Result<ApiKey, ApiError> {
    let mut values = req.header_values("authorization");
    let Some(value) = values.next() else {
        return Err(ApiError::NoAuthHeader);
    };
    if values.next().is_some() {
        return Err(ApiError::MalformedHeader);
    }
    let Some(token) = value.strip_prefix(b"ApiKey ") else {
        return Err(ApiError::MalformedHeader);
    };
    let token = std::str::from_utf8(token).map_err(|_| ApiError::InvalidToken)?;
    parse_token(token)
}

/// Decodes a `base64(id:key)` token (an enrollment token or an access key as handed out).
pub fn parse_token(token: &str) -> Result<ApiKey, ApiError> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .map_err(|_| ApiError::InvalidToken)?;
    let text = String::from_utf8(decoded).map_err(|_| ApiError::InvalidToken)?;
    let mut parts = text.split(':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(id), Some(secret), None) => Ok(ApiKey {
            id: id.to_owned(),
            secret: secret.to_owned(),
        }),
        _ => Err(ApiError::MalformedToken),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

    fn with_auth(values: &[&[u8]]) -> Request {
        Request {
            peer: None,
            tls: false,
            method: Method::Post,
            path: "/".into(),
            query: None,
            minor_version: 1,
            headers: values
                .iter()
                .map(|v| ("authorization".to_owned(), v.to_vec()))
                .collect(),
            body: Vec::new(),
            keep_alive: true,
        }
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn valid_key_is_split_into_id_and_secret() {
        let header = format!("ApiKey {}", b64("abc:def"));
        let key = api_key(&with_auth(&[header.as_bytes()])).unwrap();
        assert_eq!((key.id.as_str(), key.secret.as_str()), ("abc", "def"));
        let padded = format!("ApiKey  {} ", b64("abc:def"));
        assert!(
            api_key(&with_auth(&[padded.as_bytes()])).is_ok(),
            "remainder is trimmed"
        );
    }

    #[test]
    fn every_header_error_of_the_spec() {
        assert_eq!(api_key(&with_auth(&[])), Err(ApiError::NoAuthHeader));
        assert_eq!(
            api_key(&with_auth(&[b"Bearer x"])),
            Err(ApiError::MalformedHeader)
        );
        assert_eq!(
            api_key(&with_auth(&[b"apikey eA=="])),
            Err(ApiError::MalformedHeader),
            "prefix is case-sensitive"
        );
        let good = format!("ApiKey {}", b64("a:b"));
        assert_eq!(
            api_key(&with_auth(&[good.as_bytes(), good.as_bytes()])),
            Err(ApiError::MalformedHeader)
        );
        assert_eq!(
            api_key(&with_auth(&[b"ApiKey !!!"])),
            Err(ApiError::InvalidToken)
        );
        let not_utf8 = format!(
            "ApiKey {}",
            base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe, b':'])
        );
        assert_eq!(
            api_key(&with_auth(&[not_utf8.as_bytes()])),
            Err(ApiError::InvalidToken)
        );
        let no_colon = format!("ApiKey {}", b64("nocolon"));
        assert_eq!(
            api_key(&with_auth(&[no_colon.as_bytes()])),
            Err(ApiError::MalformedToken)
        );
        let two_colons = format!("ApiKey {}", b64("a:b:c"));
        assert_eq!(
            api_key(&with_auth(&[two_colons.as_bytes()])),
            Err(ApiError::MalformedToken)
        );
    }
}
