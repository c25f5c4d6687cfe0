//! The `payload` handed to snippets and stored in the log, parsed as the module's controller
//! does: query parameters for GET, the JSON body or the url-encoded form for POST depending
//! on the webhook's "Payload Type". A body that cannot be parsed gives `{}`, never an error.

use serde_json::{Map, Value};

use crate::definitions::ContentType;
use crate::definitions::HttpMethod;

pub fn parse(
    method: HttpMethod,
    content_type: ContentType,
    query: &str,
    mimetype: Option<&str>,
    body: &[u8],
) -> Value {
    match (method, content_type) {
        (HttpMethod::Get, _) => flat_form(query.as_bytes()),
        (HttpMethod::Post, ContentType::Form) => {
            // werkzeug fills `request.form` only for form media types; multipart bodies are
            // not parsed by towerhook (documented), so they give `{}` like any other type.
            if mimetype == Some("application/x-www-form-urlencoded") {
                flat_form(body)
            } else {
                Value::Object(Map::new())
            }
        }
        (HttpMethod::Post, ContentType::Json) => json_body(body),
    }
}

/// `MultiDict.to_dict(flat=True)`: the first value of each key.
fn flat_form(encoded: &[u8]) -> Value {
    let mut fields = Map::new();
    for (key, value) in form_urlencoded::parse(encoded) {
        fields
            .entry(key.into_owned())
            .or_insert_with(|| Value::String(value.into_owned()));
    }
    Value::Object(fields)
}

/// Python's `json.loads(bytes)`: an empty body is `{}`; UTF-8 (with or without BOM),
/// UTF-16 and UTF-32 are recognised the way `json.detect_encoding` does; anything that does
/// not parse is `{}`. The result may be any JSON value, `null` included.
fn json_body(body: &[u8]) -> Value {
    if body.is_empty() {
        return Value::Object(Map::new());
    }
    let parsed = match decode_json_text(body) {
        Some(text) => serde_json::from_str(&text),
        None => return Value::Object(Map::new()),
    };
    parsed.unwrap_or_else(|_| Value::Object(Map::new()))
}

fn decode_json_text(body: &[u8]) -> Option<std::borrow::Cow<'_, str>> {
    use std::borrow::Cow;
    const UTF8_BOM: &[u8] = b"\xef\xbb\xbf";
    if let Some(rest) = body.strip_prefix(UTF8_BOM) {
        return std::str::from_utf8(rest).ok().map(Cow::Borrowed);
    }
    let encoding = detect_encoding(body);
    match encoding {
        Encoding::Utf8 => std::str::from_utf8(body).ok().map(Cow::Borrowed),
        Encoding::Utf16 { little_endian, bom } => {
            let bytes = if bom { &body[2..] } else { body };
            if bytes.len() % 2 != 0 {
                return None;
            }
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|pair| {
                    if little_endian {
                        u16::from_le_bytes([pair[0], pair[1]])
                    } else {
                        u16::from_be_bytes([pair[0], pair[1]])
                    }
                })
                .collect();
            String::from_utf16(&units).ok().map(Cow::Owned)
        }
        Encoding::Utf32 { little_endian, bom } => {
            let bytes = if bom { &body[4..] } else { body };
            if bytes.len() % 4 != 0 {
                return None;
            }
            bytes
                .chunks_exact(4)
                .map(|quad| {
                    let quad = [quad[0], quad[1], quad[2], quad[3]];
                    let code = if little_endian {
                        u32::from_le_bytes(quad)
                    } else {
                        u32::from_be_bytes(quad)
                    };
                    char::from_u32(code)
                })
                .collect::<Option<String>>()
                .map(Cow::Owned)
        }
    }
}

enum Encoding {
    Utf8,
    Utf16 { little_endian: bool, bom: bool },
    Utf32 { little_endian: bool, bom: bool },
}

/// `json.detect_encoding`: BOMs first, then the pattern of zero bytes around the first
/// (ASCII) character of a JSON text.
fn detect_encoding(b: &[u8]) -> Encoding {
    if b.starts_with(b"\xff\xfe\x00\x00") {
        return Encoding::Utf32 {
            little_endian: true,
            bom: true,
        };
    }
    if b.starts_with(b"\x00\x00\xfe\xff") {
        return Encoding::Utf32 {
            little_endian: false,
            bom: true,
        };
    }
    if b.starts_with(b"\xff\xfe") {
        return Encoding::Utf16 {
            little_endian: true,
            bom: true,
        };
    }
    if b.starts_with(b"\xfe\xff") {
        return Encoding::Utf16 {
            little_endian: false,
            bom: true,
        };
    }
    if b.len() >= 4 {
        if b[0] == 0 {
            return if b[1] == 0 {
                Encoding::Utf32 {
                    little_endian: false,
                    bom: false,
                }
            } else {
                Encoding::Utf16 {
                    little_endian: false,
                    bom: false,
                }
            };
        }
        if b[1] == 0 {
            return if b[2] == 0 && b[3] == 0 {
                Encoding::Utf32 {
                    little_endian: true,
                    bom: false,
                }
            } else {
                Encoding::Utf16 {
                    little_endian: true,
                    bom: false,
                }
            };
        }
    } else if b.len() == 2 {
        if b[0] == 0 {
            return Encoding::Utf16 {
                little_endian: false,
                bom: false,
            };
        }
        if b[1] == 0 {
            return Encoding::Utf16 {
                little_endian: true,
                bom: false,
            };
        }
    }
    Encoding::Utf8
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn post_json(body: &[u8]) -> Value {
        parse(HttpMethod::Post, ContentType::Json, "", None, body)
    }

    #[test]
    fn get_takes_the_first_value_of_each_query_key() {
        let payload = parse(
            HttpMethod::Get,
            ContentType::Json,
            "foo=bar&foo=baz&x=a+b%21",
            None,
            b"ignored",
        );
        assert_eq!(payload, json!({"foo": "bar", "x": "a b!"}));
    }

    #[test]
    fn post_json_variants() {
        assert_eq!(post_json(b""), json!({}));
        assert_eq!(post_json(b"{\"some\": \"data\"}"), json!({"some": "data"}));
        assert_eq!(post_json(b"[1, 2]"), json!([1, 2]));
        assert_eq!(post_json(b"null"), Value::Null);
        assert_eq!(post_json(b"{not json"), json!({}));
        assert_eq!(post_json(b"\xff\xfe{"), json!({}));
        assert_eq!(post_json(b"{\"a\": \"\xc3\x28\"}"), json!({}));
        assert_eq!(post_json(b"{\"k\": 1, \"k\": 2}"), json!({"k": 2}));
    }

    #[test]
    fn big_integers_keep_every_digit() {
        let payload = post_json(b"{\"n\": 123456789012345678901234567890}");
        assert_eq!(payload["n"].to_string(), "123456789012345678901234567890");
    }

    #[test]
    fn utf16_and_utf32_bodies_and_bom() {
        let text = "{\"é\": 1}";
        let utf16le: Vec<u8> = text.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        assert_eq!(post_json(&utf16le), json!({"é": 1}));
        let mut with_bom = vec![0xfe, 0xff];
        with_bom.extend(text.encode_utf16().flat_map(|u| u.to_be_bytes()));
        assert_eq!(post_json(&with_bom), json!({"é": 1}));
        let utf32be: Vec<u8> = text
            .chars()
            .flat_map(|c| (c as u32).to_be_bytes())
            .collect();
        assert_eq!(post_json(&utf32be), json!({"é": 1}));
        assert_eq!(post_json(b"\xef\xbb\xbf{\"a\": 1}"), json!({"a": 1}));
    }

    #[test]
    fn deep_nesting_gives_an_empty_payload() {
        let deep = "[".repeat(100_000);
        assert_eq!(post_json(deep.as_bytes()), json!({}));
    }

    #[test]
    fn form_posts_need_the_form_media_type() {
        let form = parse(
            HttpMethod::Post,
            ContentType::Form,
            "q=1",
            Some("application/x-www-form-urlencoded"),
            b"form_field=ok&form_field=no",
        );
        assert_eq!(form, json!({"form_field": "ok"}));
        let not_form = parse(
            HttpMethod::Post,
            ContentType::Form,
            "",
            Some("application/json"),
            b"{\"a\": 1}",
        );
        assert_eq!(not_form, json!({}));
    }
}
