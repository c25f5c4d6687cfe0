//! The JSON-2 API of Odoo 19+: `POST /json/2/<model>/<method>` with a bearer API key, named
//! arguments in a JSON object, errors as HTTP statuses with a JSON body naming the exception.

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use super::error::{OdooError, ServerError};
use super::transport::{Call, Credentials, Http, Protocol, Session, Transport};

pub(crate) struct Json2 {
    http: Http,
}

impl Json2 {
    pub fn new(http: Http) -> Self {
        Self { http }
    }

    async fn post(
        &self,
        database: &str,
        secret: &str,
        model: &str,
        method: &str,
        body: &Map<String, Value>,
    ) -> Result<Value, OdooError> {
        let path = format!("/json/2/{model}/{method}");
        let request = self
            .http
            .post(&path)
            .header("Authorization", format!("bearer {secret}"))
            .header("X-Odoo-Database", database)
            .json(body);
        let (status, text) = self.http.send(request, &path).await?;
        if status == 200 {
            return serde_json::from_str(&text).map_err(|e| {
                self.http
                    .protocol_error(&path, format!("invalid JSON: {e}"))
            });
        }
        // Odoo's own errors carry {name, message, arguments, context, debug}; anything else
        // (an HTML 404 for an unknown database, a proxy's 502) is a plain status.
        match serde_json::from_str::<Value>(&text) {
            Ok(error) if error.get("name").is_some() => Err(OdooError::Server(ServerError {
                name: error["name"].as_str().unwrap_or_default().to_string(),
                message: error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            })),
            _ => Err(self.http.status_error(&path, status, &text)),
        }
    }
}

/// JSON-2 takes named arguments only. The methods towerhook calls positionally are mapped
/// by their Odoo 19 signatures; anything else must be called with keyword arguments.
fn parameter_names(method: &str) -> &'static [&'static str] {
    match method {
        "search" => &["domain", "offset", "limit", "order"],
        "search_read" => &["domain", "fields", "offset", "limit", "order"],
        "search_count" => &["domain", "limit"],
        "read" => &["fields"],
        "write" => &["vals"],
        "create" => &["vals_list"],
        "fields_get" => &["allfields", "attributes"],
        "check_access_rights" => &["operation", "raise_exception"],
        "has_access" => &["operation"],
        "get_param" => &["key", "default"],
        "name_search" => &["name", "domain", "operator", "limit"],
        "get_by_reference" => &["reference"],
        "towerhook_secret_values" => &["webhook_ids", "authenticator_ids"],
        "towerhook_create_logs" => &["vals_list"],
        _ => &[],
    }
}

pub(crate) fn named_arguments(call: &Call) -> Result<Map<String, Value>, OdooError> {
    let names = parameter_names(&call.method);
    if call.args.len() > names.len() {
        return Err(OdooError::Unsupported(format!(
            "the JSON-2 API takes keyword arguments only: call {}.{} with keywords \
             (positional arguments given: {})",
            call.model,
            call.method,
            call.args.len()
        )));
    }
    let mut body = call.kwargs.clone();
    for (name, value) in names.iter().zip(&call.args) {
        body.insert((*name).to_string(), value.clone());
    }
    if let Some(ids) = &call.ids {
        body.insert("ids".into(), json!(ids));
    }
    Ok(body)
}

#[async_trait]
impl Transport for Json2 {
    fn protocol(&self) -> Protocol {
        Protocol::Json2
    }

    /// `GET /web/version`, reshaped like `common.version()`.
    async fn version(&self) -> Result<Value, OdooError> {
        let path = "/web/version";
        let (status, text) = self.http.send(self.http.get(path), path).await?;
        if status != 200 {
            return Err(self.http.status_error(path, status, &text));
        }
        let answer: Value = serde_json::from_str(&text)
            .map_err(|e| self.http.protocol_error(path, format!("invalid JSON: {e}")))?;
        Ok(json!({
            "server_version": answer.get("version").cloned().unwrap_or(Value::Null),
            "server_version_info": answer.get("version_info").cloned().unwrap_or(Value::Null),
        }))
    }

    /// A bearer key has no login step: ask who it belongs to.
    async fn authenticate(&self, credentials: &Credentials) -> Result<Option<i64>, OdooError> {
        let context = self
            .post(
                &credentials.database,
                &credentials.secret,
                "res.users",
                "context_get",
                &Map::new(),
            )
            .await;
        match context {
            Ok(context) => Ok(context.get("uid").and_then(Value::as_i64)),
            Err(OdooError::Server(error)) if error.name.ends_with("Unauthorized") => Ok(None),
            Err(OdooError::Status { status: 401, .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    async fn execute(&self, session: &Session, call: &Call) -> Result<Value, OdooError> {
        let body = named_arguments(call)?;
        self.post(
            &session.database,
            &session.secret,
            &call.model,
            &call.method,
            &body,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positional_arguments_of_known_methods_become_names() {
        let call = Call::model("cx.tower.webhook", "search_read")
            .arg(json!([["active", "in", [true, false]]]))
            .arg(json!(["name"]))
            .kwarg("context", json!({"active_test": false}));
        let body = named_arguments(&call).unwrap();
        assert_eq!(
            Value::Object(body),
            json!({"domain": [["active", "in", [true, false]]], "fields": ["name"], "context": {"active_test": false}})
        );
        let write = Call::on("res.partner", "write", vec![3]).arg(json!({"name": "x"}));
        assert_eq!(
            Value::Object(named_arguments(&write).unwrap()),
            json!({"vals": {"name": "x"}, "ids": [3]})
        );
    }

    #[test]
    fn unknown_methods_need_keywords() {
        let call = Call::on("cx.tower.server", "run_flight_plan", vec![1]).arg(json!(5));
        let error = named_arguments(&call).unwrap_err().to_string();
        assert!(error.contains("keyword arguments"), "{error}");
        let call = Call::on("cx.tower.server", "run_flight_plan", vec![1]).kwarg("plan", json!(5));
        assert!(named_arguments(&call).is_ok());
    }
}
