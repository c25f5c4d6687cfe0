//! A webhook call as the pipeline sees it, independent of actix: method, endpoint, headers
//! shaped the way werkzeug hands them to the module's code, query string and peer address.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The two methods the module's route accepts (the log's `request_method` selection).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpMethod {
    Get,
    #[default]
    Post,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "get",
            HttpMethod::Post => "post",
        }
    }

    /// Case-insensitive; any other method has no place in the module's model.
    pub fn parse(text: &str) -> Option<Self> {
        if text.eq_ignore_ascii_case("get") {
            Some(HttpMethod::Get)
        } else if text.eq_ignore_ascii_case("post") {
            Some(HttpMethod::Post)
        } else {
            None
        }
    }
}

impl fmt::Display for HttpMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Request headers as `dict(request.httprequest.headers)` gives them in Odoo: names
/// Title-Cased (`X-Hub-Signature-256`), repeated headers joined with a comma, values decoded
/// as latin-1 like WSGI does. Sorted by name, since the HTTP layer does not keep order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestHeaders(Vec<(String, String)>);

impl RequestHeaders {
    /// Builds the werkzeug view from raw (name, value) pairs in arrival order. Names
    /// containing `_` are dropped, as werkzeug's server does (they would otherwise collide
    /// with their dashed twin, e.g. `X_Forwarded_For`).
    pub fn from_raw<'a>(raw: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Self {
        let mut headers: Vec<(String, String)> = Vec::new();
        for (name, value) in raw {
            if name.contains('_') {
                continue;
            }
            let name = title_case(name);
            let value = latin1(value);
            match headers.iter_mut().find(|(existing, _)| *existing == name) {
                Some((_, joined)) => {
                    joined.push(',');
                    joined.push_str(&value);
                }
                None => headers.push((name, value)),
            }
        }
        headers.sort_by(|a, b| a.0.cmp(&b.0));
        Self(headers)
    }

    /// Already-shaped pairs (tests, `towerhook run`).
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut headers: Vec<(String, String)> = pairs.into_iter().collect();
        headers.sort_by(|a, b| a.0.cmp(&b.0));
        Self(headers)
    }

    /// Case-insensitive lookup.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The media type of `Content-Type`, lower case, without parameters.
    pub fn mimetype(&self) -> Option<String> {
        self.get("Content-Type").map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Python's `str.title()` on an ASCII header name: a letter is upper case when the character
/// before it is not a letter, lower case otherwise.
fn title_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut previous_is_letter = false;
    for c in name.chars() {
        if previous_is_letter {
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c.to_ascii_uppercase());
        }
        previous_is_letter = c.is_ascii_alphabetic();
    }
    out
}

fn latin1(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) if text.is_ascii() => text.to_string(),
        _ => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

/// Everything about a call that the pipeline needs, except its body.
#[derive(Debug, Clone)]
pub struct IncomingCall {
    /// Unique per call, answered as `X-Request-Id` and kept with the log record.
    pub request_id: String,
    pub method: HttpMethod,
    /// The path after `/cetmix_tower_webhooks/`, percent-decoded; may contain slashes.
    pub endpoint: String,
    pub headers: RequestHeaders,
    /// The raw query string (without `?`).
    pub query: String,
    /// The TCP peer; IPv4-mapped IPv6 addresses are already canonical IPv4.
    pub peer: Option<IpAddr>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_title_cased_like_werkzeug() {
        assert_eq!(title_case("x-hub-signature-256"), "X-Hub-Signature-256");
        assert_eq!(title_case("X-API-KEY"), "X-Api-Key");
        assert_eq!(title_case("x-b3-traceid"), "X-B3-Traceid");
        assert_eq!(title_case("content-type"), "Content-Type");
    }

    #[test]
    fn repeated_headers_are_joined_and_underscored_names_dropped() {
        let headers = RequestHeaders::from_raw([
            ("x-forwarded-for", b"1.1.1.1".as_slice()),
            ("X_Forwarded_For", b"6.6.6.6".as_slice()),
            ("X-Forwarded-For", b"2.2.2.2".as_slice()),
            ("x-name", b"caf\xe9".as_slice()),
        ]);
        assert_eq!(headers.get("x-forwarded-for"), Some("1.1.1.1,2.2.2.2"));
        assert_eq!(headers.get("X-Name"), Some("café"));
        assert_eq!(headers.len(), 2);
    }

    #[test]
    fn mimetype_drops_parameters() {
        let headers = RequestHeaders::from_raw([(
            "content-type",
            b"Application/X-WWW-Form-Urlencoded; charset=utf-8".as_slice(),
        )]);
        assert_eq!(
            headers.mimetype().as_deref(),
            Some("application/x-www-form-urlencoded")
        );
    }
}
