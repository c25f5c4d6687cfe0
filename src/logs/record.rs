//! One `cx.tower.webhook.log` record: what a call did, in the log model's fields.

use serde::{Deserialize, Serialize};

use crate::definitions::HttpMethod;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthenticationStatus {
    Success,
    #[default]
    Failed,
    NotRequired,
}

impl AuthenticationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthenticationStatus::Success => "success",
            AuthenticationStatus::Failed => "failed",
            AuthenticationStatus::NotRequired => "not_required",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeStatus {
    Success,
    Failed,
    #[default]
    Skipped,
}

impl CodeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CodeStatus::Success => "success",
            CodeStatus::Failed => "failed",
            CodeStatus::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    /// Unique per call: the `X-Request-Id` answered, and the key that keeps a record from
    /// being created twice in Odoo.
    pub request_id: String,
    /// UTC, `YYYY-MM-DD HH:MM:SS.ffffff`; retention counts from it.
    pub create_date: String,
    /// Odoo id of the matched webhook (`None` when none matched or it has no Odoo id).
    pub webhook_id: Option<i64>,
    /// Reference of the matched webhook, so records stay meaningful without Odoo ids.
    pub webhook_reference: Option<String>,
    pub endpoint: String,
    pub authenticator_id: Option<i64>,
    pub authenticator_reference: Option<String>,
    pub request_method: HttpMethod,
    /// JSON object of the request headers (sensitive ones redacted).
    pub request_headers: String,
    /// JSON of the parsed payload; `None` when the payload was JSON `null`.
    pub request_payload: Option<String>,
    pub authentication_status: AuthenticationStatus,
    pub code_status: CodeStatus,
    pub http_status: u16,
    pub result_message: Option<String>,
    pub error_message: Option<String>,
    /// The webhook's "Run as User".
    pub user_id: Option<i64>,
    /// The effective client address (trusted proxies honoured).
    pub ip_address: Option<String>,
    /// ISO country code from GeoIP, when configured.
    pub country_code: Option<String>,
}

impl LogRecord {
    /// Roughly the bytes the record holds, for the outbox bound.
    pub fn size(&self) -> usize {
        let text = |t: &Option<String>| t.as_ref().map_or(0, String::len);
        200 + self.endpoint.len()
            + self.request_headers.len()
            + text(&self.request_payload)
            + text(&self.result_message)
            + text(&self.error_message)
    }
}

/// A new request id: 128 random bits, hex.
pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Now, in the record's timestamp format.
pub fn timestamp_now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%d %H:%M:%S%.6f")
        .to_string()
}
