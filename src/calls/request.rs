//! A webhook call as the pipeline sees it, independent of actix: method, endpoint, headers
//! shaped the way werkzeug hands them to the module's code, query string and peer address.

use std::net::IpAddr;

pub use crate::definitions::HttpMethod;

/// Request headers as `dict(request.httprequest.headers)` gives them in Odoo 18 (werkzeug
/// 2.2's WSGI environ): in arrival order, names Title-Cased (`X-Hub-Signature-256`), `_` in
/// a name read as `-` (`X_Under_Score` arrives as `X-Under-Score`), repeated headers joined
/// with a comma at the place of the first one (`Content-Type` and `Content-Length`: the
/// last one wins, and an empty one is absent), values decoded as latin-1 like WSGI does.
///
/// The addresses proxies add (`X-Forwarded-For`, `X-Real-IP`) are kept apart as they came
/// with dashes only: a client behind a proxy that passes underscores could otherwise slip
/// an `X_Forwarded_For` into the chain the trusted proxy vouches for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestHeaders {
    headers: Vec<(String, String)>,
    forwarded_for: Option<String>,
    real_ip: Option<String>,
}

/// werkzeug does not join these: the environ keeps the last one.
const SINGLE: [&str; 2] = ["Content-Type", "Content-Length"];

impl RequestHeaders {
    /// Builds the werkzeug view from raw (name, value) pairs in arrival order.
    pub fn from_raw<'a>(raw: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Self {
        let mut shaped = Self::default();
        for (raw_name, value) in raw {
            let value = latin1(value);
            if raw_name.eq_ignore_ascii_case("x-forwarded-for") {
                join(&mut shaped.forwarded_for, &value);
            } else if raw_name.eq_ignore_ascii_case("x-real-ip") {
                join(&mut shaped.real_ip, &value);
            }
            let name = title_case(&raw_name.replace('_', "-"));
            let single = SINGLE.contains(&name.as_str());
            match shaped.headers.iter_mut().find(|(known, _)| *known == name) {
                Some((_, kept)) if single => *kept = value,
                Some((_, joined)) => {
                    joined.push(',');
                    joined.push_str(&value);
                }
                None => shaped.headers.push((name, value)),
            }
        }
        shaped
            .headers
            .retain(|(name, value)| !(value.is_empty() && SINGLE.contains(&name.as_str())));
        shaped
    }

    /// Already-shaped pairs, in the order given.
    #[cfg(test)]
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let pairs: Vec<(String, String)> = pairs.into_iter().collect();
        Self::from_raw(
            pairs
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_bytes())),
        )
    }

    /// `X-Forwarded-For` as proxies send it (dashed names only), joined in arrival order.
    pub fn forwarded_for(&self) -> Option<&str> {
        self.forwarded_for.as_deref()
    }

    /// `X-Real-IP` as proxies send it (dashed names only).
    pub fn real_ip(&self) -> Option<&str> {
        self.real_ip.as_deref()
    }

    /// Case-insensitive lookup.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
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

    /// In arrival order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.headers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
    }
}

fn join(kept: &mut Option<String>, value: &str) {
    match kept {
        Some(joined) => {
            joined.push(',');
            joined.push_str(value);
        }
        None => *kept = Some(value.to_string()),
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
    /// The path as the caller sent it (percent-encoded, before the trailing slash is
    /// dropped), for the public URL.
    pub path: String,
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
    fn headers_keep_arrival_order_and_underscores_read_as_dashes() {
        let headers = RequestHeaders::from_raw([
            ("x-zeta", b"1".as_slice()),
            ("x-forwarded-for", b"1.1.1.1".as_slice()),
            ("X_Forwarded_For", b"6.6.6.6".as_slice()),
            ("X-Forwarded-For", b"2.2.2.2".as_slice()),
            ("x-name", b"caf\xe9".as_slice()),
            ("content-type", b"text/plain".as_slice()),
            ("Content_Type", b"application/json".as_slice()),
            ("content-length", b"".as_slice()),
            ("accept", b"*/*".as_slice()),
        ]);
        let names: Vec<&str> = headers.iter().map(|(name, _)| name).collect();
        assert_eq!(
            names,
            [
                "X-Zeta",
                "X-Forwarded-For",
                "X-Name",
                "Content-Type",
                "Accept"
            ]
        );
        // What snippets see joins every spelling, as werkzeug does...
        assert_eq!(
            headers.get("x-forwarded-for"),
            Some("1.1.1.1,6.6.6.6,2.2.2.2")
        );
        // ...but the chain a proxy vouches for holds only the dashed headers.
        assert_eq!(headers.forwarded_for(), Some("1.1.1.1,2.2.2.2"));
        assert_eq!(headers.get("X-Name"), Some("café"));
        assert_eq!(headers.get("Content-Type"), Some("application/json"));
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
