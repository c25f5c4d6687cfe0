//! Webhooks and authenticators as towerhook serves them, whatever their source: the model
//! (here), the registry being served (`registry`), the readers of YAML files (`yaml`) and of
//! Odoo (`odoo`), the cached Odoo snapshot (`snapshot`), the task that keeps them current
//! (`sync`), the YAML round trip with Odoo (`roundtrip`), and secret values (`secrets`).

pub mod delivery;
pub mod delivery_fields;
mod ip_list;
pub mod odoo;
mod problems;
pub mod registry;
pub mod roundtrip;
pub mod secrets;
pub mod snapshot;
pub mod sync;
pub mod yaml;

pub use ip_list::IpList;
pub use problems::{LoadError, Problem};

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::definitions::secrets::{SecretValues, secret_references};

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

pub use crate::odoo::models::SUPERUSER_ID;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SnippetKind {
    Authenticator,
    Webhook,
}

impl SnippetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SnippetKind::Authenticator => "authenticator",
            SnippetKind::Webhook => "webhook",
        }
    }
}

/// A snippet version: the first 16 bytes of the sha-256 of its kind, code and secret
/// values. Workers keep snippets compiled by id, so equal versions compile once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SnippetId(pub [u8; 16]);

/// The code of an authenticator or a webhook, with the values of the secrets it
/// references (and no others).
pub struct Snippet {
    kind: SnippetKind,
    source: String,
    secrets: SecretValues,
    id: SnippetId,
}

impl Snippet {
    pub fn new(kind: SnippetKind, source: &str) -> Self {
        Self::with_secrets(kind, source, &SecretValues::new())
    }

    /// Keeps, of `secrets`, the values this code references (`None` for an unknown one).
    pub fn with_secrets(kind: SnippetKind, source: &str, secrets: &SecretValues) -> Self {
        let secrets: SecretValues = secret_references(source)
            .into_iter()
            .map(|reference| {
                let value = secrets.get(&reference).cloned().flatten();
                (reference, value)
            })
            .collect();
        let mut digest = Sha256::new();
        digest.update(kind.as_str());
        digest.update([0]);
        digest.update(source);
        for (reference, value) in &secrets {
            digest.update([0]);
            digest.update(reference);
            match value {
                Some(value) => {
                    digest.update([1]);
                    digest.update(value);
                }
                None => digest.update([2]),
            }
        }
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest.finalize()[..16]);
        Self {
            kind,
            source: source.to_string(),
            secrets,
            id: SnippetId(id),
        }
    }

    pub fn kind(&self) -> SnippetKind {
        self.kind
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The referenced secrets and their values.
    pub fn secrets(&self) -> &SecretValues {
        &self.secrets
    }

    pub fn id(&self) -> SnippetId {
        self.id
    }
}

impl fmt::Debug for Snippet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snippet")
            .field("kind", &self.kind)
            .field("source", &self.source)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
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
    /// towerhook extension (src/delivery): duplicate guard, limits, accept-now-run-later.
    pub delivery: Arc<crate::definitions::delivery::Policy>,
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
    fn a_snippet_keeps_only_the_secrets_it_references_and_its_id_follows_them() {
        let secrets: SecretValues = [
            ("used".to_string(), Some("one".to_string())),
            ("other".to_string(), Some("two".to_string())),
        ]
        .into();
        let code = "token = #!cxtower.secret.used!#\nmissing = #!cxtower.secret.gone !#";
        let snippet = Snippet::with_secrets(SnippetKind::Webhook, code, &secrets);
        assert_eq!(
            snippet.secrets(),
            &SecretValues::from([
                ("used".to_string(), Some("one".to_string())),
                ("gone".to_string(), None),
            ])
        );
        let rotated: SecretValues = [("used".to_string(), Some("three".to_string()))].into();
        let after = Snippet::with_secrets(SnippetKind::Webhook, code, &rotated);
        assert_ne!(snippet.id(), after.id());
        let again = Snippet::with_secrets(SnippetKind::Webhook, code, &secrets);
        assert_eq!(snippet.id(), again.id());
        let other_kind = Snippet::with_secrets(SnippetKind::Authenticator, code, &secrets);
        assert_ne!(snippet.id(), other_kind.id());
    }

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
