//! Webhooks and authenticators as towerhook serves them, whatever their source.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::ip_rules::IpList;
use crate::python::Snippet;
use crate::request::HttpMethod;

/// The superuser the module runs webhook code as unless "Run as User" says otherwise.
pub const SUPERUSER_ID: i64 = 1;

/// The webhook's "Payload Type": how a POST body becomes `payload`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContentType {
    Json,
    Form,
}

impl ContentType {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "json" => Some(ContentType::Json),
            "form" => Some(ContentType::Form),
            _ => None,
        }
    }
}

#[derive(Debug)]
pub struct Authenticator {
    /// Odoo record id; `None` for definitions that do not come from Odoo.
    pub id: Option<i64>,
    pub reference: String,
    pub name: String,
    pub code: Snippet,
    pub allowed_ips: IpList,
    pub trusted_proxies: IpList,
}

#[derive(Debug)]
pub struct Webhook {
    pub id: Option<i64>,
    pub reference: String,
    pub name: String,
    pub active: bool,
    pub authenticator: Arc<Authenticator>,
    pub endpoint: String,
    pub method: HttpMethod,
    pub content_type: ContentType,
    /// "Run as User" (`res.users` id).
    pub user_id: i64,
    pub code: Snippet,
}

/// The module's endpoint constraint: `^[A-Za-z0-9](?:[A-Za-z0-9_/-]*[A-Za-z0-9])?$`.
pub fn is_valid_endpoint(endpoint: &str) -> bool {
    let bytes = endpoint.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'/' | b'-'))
}

/// Message of the module's endpoint constraint.
pub const ENDPOINT_RULE: &str = "Endpoint must start and end with a letter or digit, and may \
contain underscores, dashes, and slashes in between";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_rule_matches_the_module_regex() {
        for good in ["a", "webhook_post", "ci/build-done", "A9", "x-y_z/1"] {
            assert!(is_valid_endpoint(good), "{good}");
        }
        for bad in ["", "-a", "a-", "a/", "/a", "a b", "é", "a.b", "a?b"] {
            assert!(!is_valid_endpoint(bad), "{bad}");
        }
    }
}
