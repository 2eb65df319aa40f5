//! Body → message table for [`super::decode`]: each cause as Go's `json.Decoder` words it.

use serde::Deserialize;

use super::*;

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Inner {
    #[serde(default, deserialize_with = "null_strings")]
    tags: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Body {
    #[serde(default, deserialize_with = "null_as_default")]
    status: String,
    #[serde(default)]
    revision: Option<i64>,
    #[serde(default)]
    meta: Option<Inner>,
    #[serde(default)]
    raw: Option<serde_json::Value>,
}

const NAMES: GoBody = GoBody {
    request: "checkin",
    go_type: "api.CheckinRequest",
    fields: &[
        GoField::member("status", "CheckinRequest", "api.CheckinRequestStatus"),
        GoField::integer("revision", "CheckinRequest", "int64"),
        GoField::member("meta", "CheckinRequest", "api.Meta"),
        GoField::member("meta.tags", "Meta", "[]string"),
        GoField::elements("meta.tags", "Meta", "string"),
    ],
};

fn message(body: &str) -> String {
    match decode::<Body>(body.as_bytes(), &NAMES) {
        Err(OpError::Invalid(m)) => m,
        other => panic!("{body}: {other:?}"),
    }
}

#[test]
fn syntax_errors_read_like_gos_scanner() {
    for (body, cause) in [
        ("", "EOF"),
        ("  \n ", "EOF"),
        ("{", "unexpected EOF"),
        ("{\"status\":\"onl", "unexpected EOF"),
        ("{\"status\":", "unexpected EOF"),
        ("x", "invalid character 'x' looking for beginning of value"),
        (
            "{\"status\":}",
            "invalid character '}' looking for beginning of value",
        ),
        (
            "{status:1}",
            "invalid character 's' looking for beginning of object key string",
        ),
        ("{\"status\" 1}", "invalid character '1' after object key"),
        (
            "{\"status\":\"a\" \"b\"}",
            "invalid character '\"' after object key:value pair",
        ),
        (
            "{\"status\":\"a\",}",
            "invalid character '}' looking for beginning of object key string",
        ),
        (
            "{\"raw\":[1 2]}",
            "invalid character '2' after array element",
        ),
        (
            "{\"raw\":[1,]}",
            "invalid character ']' looking for beginning of value",
        ),
        (
            "{\"status\":\"a\tb\"}",
            "invalid character '\\t' in string literal",
        ),
        (
            "{\"status\":\"\\q\"}",
            "invalid character 'q' in string escape code",
        ),
        (
            "{\"status\":\"\\u12x4\"}",
            "invalid character 'x' in \\u hexadecimal character escape",
        ),
        ("{\"raw\":-x}", "invalid character 'x' in numeric literal"),
        (
            "{\"raw\":1.e}",
            "invalid character 'e' after decimal point in numeric literal",
        ),
        (
            "{\"raw\":1e+}",
            "invalid character '}' in exponent of numeric literal",
        ),
        (
            "{\"raw\":01}",
            "invalid character '1' after object key:value pair",
        ),
        (
            "{\"raw\":tru}",
            "invalid character '}' in literal true (expecting 'e')",
        ),
        (
            "{\"raw\":nul1}",
            "invalid character '1' in literal null (expecting 'l')",
        ),
        (
            "{\"raw\":fals}",
            "invalid character '}' in literal false (expecting 'e')",
        ),
        (
            "{'status':1}",
            "invalid character '\\'' looking for beginning of object key string",
        ),
        (
            "\u{1}",
            "invalid character '\\x01' looking for beginning of value",
        ),
    ] {
        assert_eq!(
            message(body),
            format!("unable to decode checkin request: {cause}"),
            "{body:?}"
        );
    }
}

#[test]
fn type_errors_name_the_go_struct_field() {
    let prefix = "unable to decode checkin request: json: cannot unmarshal";
    for (body, cause) in [
        (
            "{\"status\":5}",
            "number into Go struct field CheckinRequest.status of type api.CheckinRequestStatus",
        ),
        (
            "{\"status\":true}",
            "bool into Go struct field CheckinRequest.status of type api.CheckinRequestStatus",
        ),
        (
            "{\"status\":{\"a\":1}}",
            "object into Go struct field CheckinRequest.status of type api.CheckinRequestStatus",
        ),
        (
            "{\"status\":[\"a\"]}",
            "array into Go struct field CheckinRequest.status of type api.CheckinRequestStatus",
        ),
        (
            "{\"revision\":\"7\"}",
            "string into Go struct field CheckinRequest.revision of type int64",
        ),
        (
            "{\"revision\":1.5}",
            "number 1.5 into Go struct field CheckinRequest.revision of type int64",
        ),
        (
            "{\"revision\":1e3}",
            "number 1e3 into Go struct field CheckinRequest.revision of type int64",
        ),
        (
            "{\"meta\":\"x\"}",
            "string into Go struct field CheckinRequest.meta of type api.Meta",
        ),
        (
            "{\"meta\":{\"tags\":\"a\"}}",
            "string into Go struct field Meta.meta.tags of type []string",
        ),
        (
            "{\"meta\":{\"tags\":[\"a\",2]}}",
            "number into Go struct field Meta.meta.tags of type string",
        ),
        ("[1]", "array into Go value of type api.CheckinRequest"),
        ("\"x\"", "string into Go value of type api.CheckinRequest"),
        ("7", "number into Go value of type api.CheckinRequest"),
        (
            "{\n  \"raw\": {},\n  \"status\": 5\n}",
            "number into Go struct field CheckinRequest.status of type api.CheckinRequestStatus",
        ),
    ] {
        assert_eq!(message(body), format!("{prefix} {cause}"), "{body:?}");
    }
}

#[test]
fn nulls_are_zero_and_only_the_first_value_is_read() {
    let body: Body = decode(
        br#"{"status":null,"revision":null,"meta":{"tags":null},"raw":null}"#,
        &NAMES,
    )
    .unwrap();
    assert_eq!(body.status, "");
    assert!(body.meta.unwrap().tags.is_empty());
    let body: Body = decode(br#"{"meta":{"tags":["a",null]}}"#, &NAMES).unwrap();
    assert_eq!(body.meta.unwrap().tags, ["a", ""]);
    // Go decodes a top-level null into the zero struct.
    let body: Body = decode(b" null ", &NAMES).unwrap();
    assert_eq!(body.status, "");
    let body: Body = decode(br#"{"status":"online"} trailing {"#, &NAMES).unwrap();
    assert_eq!(body.status, "online");
}

#[test]
fn causes_go_has_no_words_for_keep_serdes() {
    assert_eq!(
        message(r#"{"status":"a","status":"b"}"#),
        "unable to decode checkin request: duplicate field `status`"
    );
}

#[test]
fn deep_nesting_is_refused_without_exhausting_the_stack() {
    let body = "[".repeat(1 << 20);
    let cause = message(&format!("{{\"raw\":{body}"));
    assert_eq!(
        cause,
        "unable to decode checkin request: invalid character '[' exceeded max depth"
    );
}
