//! What every transport offers, and the HTTP plumbing they share.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::error::{OdooError, excerpt};

pub use crate::configuration::Protocol;

/// Who logs in.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub database: String,
    pub login: String,
    /// API key (or password).
    pub secret: String,
}

/// A logged-in user: every call carries it, the API being stateless.
#[derive(Clone)]
pub struct Session {
    pub database: String,
    pub uid: i64,
    pub login: String,
    pub secret: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("database", &self.database)
            .field("uid", &self.uid)
            .field("login", &self.login)
            .finish_non_exhaustive()
    }
}

/// One ORM method call. `ids` set means a record method called on those records.
#[derive(Debug, Clone, Default)]
pub struct Call {
    pub model: String,
    pub method: String,
    pub ids: Option<Vec<i64>>,
    pub args: Vec<Value>,
    pub kwargs: Map<String, Value>,
}

impl Call {
    pub fn model(model: &str, method: &str) -> Self {
        Self {
            model: model.to_string(),
            method: method.to_string(),
            ..Self::default()
        }
    }

    pub fn on(model: &str, method: &str, ids: Vec<i64>) -> Self {
        Self {
            ids: Some(ids),
            ..Self::model(model, method)
        }
    }

    pub fn arg(mut self, value: Value) -> Self {
        self.args.push(value);
        self
    }

    pub fn kwarg(mut self, name: &str, value: Value) -> Self {
        self.kwargs.insert(name.to_string(), value);
        self
    }

    /// `execute_kw`'s positional arguments: the ids first for record methods.
    pub(crate) fn positional(&self) -> Vec<Value> {
        let mut args = Vec::with_capacity(self.args.len() + 1);
        if let Some(ids) = &self.ids {
            args.push(Value::from(ids.clone()));
        }
        args.extend(self.args.iter().cloned());
        args
    }
}

/// `common.authenticate`'s arguments (JSON-RPC and XML-RPC).
pub(crate) fn authenticate_args(credentials: &Credentials) -> Vec<Value> {
    vec![
        Value::from(credentials.database.clone()),
        Value::from(credentials.login.clone()),
        Value::from(credentials.secret.clone()),
        Value::Object(Map::new()),
    ]
}

/// `object.execute_kw`'s arguments (JSON-RPC and XML-RPC).
pub(crate) fn execute_kw_args(session: &Session, call: &Call) -> Vec<Value> {
    vec![
        Value::from(session.database.clone()),
        Value::from(session.uid),
        Value::from(session.secret.clone()),
        Value::from(call.model.clone()),
        Value::from(call.method.clone()),
        Value::Array(call.positional()),
        Value::Object(call.kwargs.clone()),
    ]
}

#[async_trait]
pub trait Transport: Send + Sync {
    fn protocol(&self) -> Protocol;

    /// `common.version()`'s answer.
    async fn version(&self) -> Result<Value, OdooError>;

    /// The uid for these credentials, `None` when Odoo refuses them.
    async fn authenticate(&self, credentials: &Credentials) -> Result<Option<i64>, OdooError>;

    async fn execute(&self, session: &Session, call: &Call) -> Result<Value, OdooError>;
}

/// reqwest is built without a default TLS provider (aws-lc is a long C build): ring is
/// installed once per process, before any HTTP client is made.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// One HTTP client per Odoo, with the call timeout on every request.
#[derive(Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    pub base: String,
}

impl Http {
    pub fn new(url: &str, timeout: Duration) -> Result<Self, OdooError> {
        install_tls_provider();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("towerhook/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| OdooError::Unreachable {
                url: url.to_string(),
                reason: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(Self {
            client,
            base: url.trim_end_matches('/').to_string(),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends and returns (status, body); only failures to get an answer are errors here.
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
        path: &str,
    ) -> Result<(u16, String), OdooError> {
        let unreachable = |e: reqwest::Error| OdooError::Unreachable {
            url: self.url(path),
            reason: describe_reqwest(&e),
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(unreachable)?;
        Ok((status, body))
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(self.url(path))
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path))
    }

    pub fn status_error(&self, path: &str, status: u16, body: &str) -> OdooError {
        OdooError::Status {
            url: self.url(path),
            status,
            excerpt: excerpt(body),
        }
    }

    pub fn protocol_error(&self, path: &str, reason: impl Into<String>) -> OdooError {
        OdooError::Protocol {
            url: self.url(path),
            reason: reason.into(),
        }
    }
}

/// reqwest's Display hides the cause ("error sending request"); show the chain.
fn describe_reqwest(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "timed out".to_string()
    } else if error.is_connect() {
        "connection failed".to_string()
    } else {
        error.to_string()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
