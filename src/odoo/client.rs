//! One Odoo client: picks the transport, logs in, and retries what can be retried.

use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use serde_json::Value;

use super::error::OdooError;
use super::json2::Json2;
use super::jsonrpc::JsonRpc;
use super::transport::{Call, Credentials, Http, Protocol, Session, Transport};
use super::xmlrpc::XmlRpc;

/// The first Odoo version whose external API is JSON-2.
const JSON2_SINCE: u32 = 19;

#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub url: String,
    pub database: String,
    pub login: String,
    /// API key (or password; JSON-2 needs an API key). Never printed.
    pub secret: SecretString,
    pub protocol: Protocol,
    /// Limit of one HTTP exchange.
    pub timeout: Duration,
    /// Further attempts after a transport failure or a 5xx status.
    pub retries: usize,
}

impl ClientSettings {
    /// The Odoo client's settings, when Odoo is configured.
    pub fn from_settings(settings: &crate::configuration::Settings) -> Option<Self> {
        Some(Self {
            url: settings.odoo_url.clone()?,
            database: settings.odoo_db.clone()?,
            login: settings.odoo_login.clone()?,
            secret: settings.odoo_api_key.clone()?,
            protocol: settings.odoo_protocol,
            timeout: Duration::from_secs_f64(settings.odoo_timeout_secs),
            retries: settings.odoo_retries,
        })
    }
}

/// What `common.version()` said.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerVersion {
    /// e.g. `17.0`, `saas~18.3`.
    pub text: String,
    pub major: Option<u32>,
}

impl ServerVersion {
    fn from_answer(answer: &Value) -> Self {
        let text = answer
            .get("server_version")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_string();
        let first = answer
            .get("server_version_info")
            .and_then(|info| info.get(0))
            .cloned();
        let major = match first {
            Some(Value::Number(n)) => n.as_u64().map(|n| n as u32),
            // `saas~17`
            Some(Value::String(s)) => s.trim_start_matches("saas~").parse().ok(),
            _ => None,
        }
        .or_else(|| {
            text.trim_start_matches("saas~")
                .split('.')
                .next()
                .and_then(|m| m.parse().ok())
        });
        Self { text, major }
    }
}

/// Told about every RPC call (metrics).
pub trait RpcObserver: Send + Sync {
    fn observe(&self, call: &Call, took: Duration, error: Option<&OdooError>);
}

pub struct OdooClient {
    transport: Arc<dyn Transport>,
    url: String,
    version: ServerVersion,
    session: Session,
    retry: ExponentialBuilder,
    observer: Option<Arc<dyn RpcObserver>>,
}

impl OdooClient {
    /// Chooses the transport (asking the server's version for `auto`) and logs in.
    pub async fn connect(settings: &ClientSettings) -> Result<Self, OdooError> {
        let http = Http::new(&settings.url, settings.timeout)?;
        let retry = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(5))
            .with_jitter()
            .with_max_times(settings.retries);
        let (transport, answer) = choose_transport(http, settings.protocol, retry).await?;
        let mut client = Self {
            transport,
            url: settings.url.clone(),
            version: ServerVersion::from_answer(&answer),
            session: Session {
                database: settings.database.clone(),
                uid: 0,
                login: settings.login.clone(),
                secret: String::new(),
            },
            retry,
            observer: None,
        };
        client.session = client
            .login(&settings.login, settings.secret.expose_secret())
            .await?;
        Ok(client)
    }

    /// Reports every later call to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn RpcObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Logs another user in (run-as users); never retried on refusal, as failed logins are
    /// rate-limited per address by Odoo.
    pub async fn login(&self, login: &str, secret: &str) -> Result<Session, OdooError> {
        let credentials = Credentials {
            database: self.session.database.clone(),
            login: login.to_string(),
            secret: secret.to_string(),
        };
        let uid = (|| self.transport.authenticate(&credentials))
            .retry(self.retry)
            .when(OdooError::is_retryable)
            .await?;
        let uid = uid.ok_or_else(|| OdooError::LoginRefused {
            url: self.url.clone(),
            database: credentials.database.clone(),
            login: login.to_string(),
            hint: if self.protocol() == Protocol::Json2 {
                "; the JSON-2 API of Odoo 19+ needs an API key, not a password"
            } else {
                ""
            },
        })?;
        Ok(Session {
            database: credentials.database,
            uid,
            login: credentials.login,
            secret: credentials.secret,
        })
    }

    /// Calls as the service user.
    pub async fn execute(&self, call: &Call) -> Result<Value, OdooError> {
        self.execute_as(&self.session, call).await
    }

    pub async fn execute_as(&self, session: &Session, call: &Call) -> Result<Value, OdooError> {
        let started = std::time::Instant::now();
        let result = self.execute_with_retries(session, call).await;
        if let Some(observer) = &self.observer {
            observer.observe(call, started.elapsed(), result.as_ref().err());
        }
        result
    }

    async fn execute_with_retries(
        &self,
        session: &Session,
        call: &Call,
    ) -> Result<Value, OdooError> {
        (|| self.transport.execute(session, call))
            .retry(self.retry)
            .when(OdooError::is_retryable)
            .notify(|error, delay| {
                tracing::warn!(
                    "Odoo call {}.{} failed ({error}); retrying in {delay:?}",
                    call.model,
                    call.method
                );
            })
            .await
    }

    pub fn protocol(&self) -> Protocol {
        self.transport.protocol()
    }

    pub fn version(&self) -> &ServerVersion {
        &self.version
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

async fn choose_transport(
    http: Http,
    protocol: Protocol,
    retry: ExponentialBuilder,
) -> Result<(Arc<dyn Transport>, Value), OdooError> {
    let transport: Arc<dyn Transport> = match protocol {
        Protocol::JsonRpc => Arc::new(JsonRpc::new(http)),
        Protocol::XmlRpc => Arc::new(XmlRpc::new(http)),
        Protocol::Json2 => Arc::new(Json2::new(http)),
        Protocol::Auto => {
            let jsonrpc: Arc<dyn Transport> = Arc::new(JsonRpc::new(http.clone()));
            let answer = (|| jsonrpc.version())
                .retry(retry)
                .when(OdooError::is_retryable)
                .await;
            return match answer {
                Ok(answer) => {
                    let major = ServerVersion::from_answer(&answer).major.unwrap_or(0);
                    if major >= JSON2_SINCE {
                        Ok((Arc::new(Json2::new(http)), answer))
                    } else {
                        Ok((jsonrpc, answer))
                    }
                }
                // Odoo versions that dropped /jsonrpc only speak JSON-2.
                Err(OdooError::Status { status: 404, .. }) => {
                    let json2: Arc<dyn Transport> = Arc::new(Json2::new(http));
                    let answer = json2.version().await?;
                    Ok((json2, answer))
                }
                Err(error) => Err(error),
            };
        }
    };
    let answer = (|| transport.version())
        .retry(retry)
        .when(OdooError::is_retryable)
        .await?;
    Ok((transport, answer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn versions_are_read_from_every_shape() {
        let v = ServerVersion::from_answer(
            &json!({"server_version": "17.0", "server_version_info": [17, 0, 0, "final", 0, ""]}),
        );
        assert_eq!(v.major, Some(17));
        let v = ServerVersion::from_answer(
            &json!({"server_version": "saas~18.3", "server_version_info": ["saas~18", 3, 0, "final", 0, ""]}),
        );
        assert_eq!(v.major, Some(18));
        let v = ServerVersion::from_answer(&json!({"server_version": "19.0"}));
        assert_eq!(v.major, Some(19));
    }
}
