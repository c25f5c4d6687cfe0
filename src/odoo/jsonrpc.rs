//! JSON-RPC over `POST /jsonrpc` (Odoo 8–19).

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use serde_json::{Value, json};

use super::error::{OdooError, ServerError};
use super::transport::{
    Call, Credentials, Http, Protocol, Session, Transport, authenticate_args, execute_kw_args,
};

const PATH: &str = "/jsonrpc";

pub(crate) struct JsonRpc {
    http: Http,
    next_id: AtomicU64,
}

impl JsonRpc {
    pub fn new(http: Http) -> Self {
        Self {
            http,
            next_id: AtomicU64::new(1),
        }
    }

    async fn call(
        &self,
        service: &str,
        method: &str,
        args: Vec<Value>,
    ) -> Result<Value, OdooError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let envelope = json!({
            "jsonrpc": "2.0",
            "method": "call",
            "params": {"service": service, "method": method, "args": args},
            "id": id,
        });
        let (status, body) = self
            .http
            .send(self.http.post(PATH).json(&envelope), PATH)
            .await?;
        if status != 200 {
            return Err(self.http.status_error(PATH, status, &body));
        }
        let mut reply: Value =
            serde_json::from_str(&body).map_err(|_| self.http.status_error(PATH, status, &body))?;
        if let Some(error) = reply.get("error") {
            return Err(OdooError::Server(server_error(error)));
        }
        // A method returning None may come back without a result at all.
        Ok(reply
            .get_mut("result")
            .map(Value::take)
            .unwrap_or(Value::Null))
    }
}

/// `error.data.name` / `error.data.message`, falling back to the envelope's own message.
pub(crate) fn server_error(error: &Value) -> ServerError {
    let data = error.get("data");
    let text = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_string);
    ServerError {
        name: text(data.and_then(|d| d.get("name")))
            .unwrap_or_else(|| "odoo.exceptions.UnknownError".to_string()),
        message: text(data.and_then(|d| d.get("message")))
            .or_else(|| text(error.get("message")))
            .unwrap_or_default(),
    }
}

#[async_trait]
impl Transport for JsonRpc {
    fn protocol(&self) -> Protocol {
        Protocol::JsonRpc
    }

    async fn version(&self) -> Result<Value, OdooError> {
        self.call("common", "version", vec![]).await
    }

    async fn authenticate(&self, credentials: &Credentials) -> Result<Option<i64>, OdooError> {
        let uid = self
            .call("common", "authenticate", authenticate_args(credentials))
            .await?;
        Ok(uid.as_i64().filter(|uid| *uid > 0))
    }

    async fn execute(&self, session: &Session, call: &Call) -> Result<Value, OdooError> {
        self.call("object", "execute_kw", execute_kw_args(session, call))
            .await
    }
}
