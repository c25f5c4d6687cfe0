//! Whose rights webhook code uses over RPC: the webhook's "Run as User", logged in with the
//! API key configured for it (`run_as_users`). The superuser (the module's default) runs
//! as the service user, who is what the module's `sudo` becomes over RPC.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::Mutex;

use crate::configuration::RunAsPolicy;
use crate::definitions::SUPERUSER_ID;
use crate::log_throttle::LogThrottle;
use crate::odoo::{Call, OdooError, OdooLink, Session};

/// A refused login is not tried again for this long: Odoo locks out an address after a
/// few failures, and everybody behind it with it.
const FAILED_LOGIN_KEPT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, thiserror::Error)]
pub enum RunAsError {
    #[error(
        "the webhook runs as Odoo user {uid}{login}, for which towerhook has no credentials: \
         add it to run_as_users (e.g. TOWERHOOK_RUN_AS_USERS=\"{uid}=<api key>\"), or set \
         run_as_policy = \"service\" to run such code as the service user"
    )]
    NoCredentials { uid: i64, login: String },
    #[error("logging in Odoo user {uid} failed: {reason}")]
    LoginFailed { uid: i64, reason: String },
    #[error(transparent)]
    Odoo(#[from] OdooError),
}

pub struct RunAs {
    link: Arc<OdooLink>,
    /// user id or login → API key.
    credentials: BTreeMap<String, String>,
    policy: RunAsPolicy,
    sessions: Mutex<HashMap<i64, Known>>,
}

enum Known {
    Session(Session),
    Failed(RunAsError, Instant),
}

impl RunAs {
    pub fn new(
        link: Arc<OdooLink>,
        credentials: BTreeMap<String, String>,
        policy: RunAsPolicy,
    ) -> Self {
        Self {
            link,
            credentials,
            policy,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    pub fn link(&self) -> &Arc<OdooLink> {
        &self.link
    }

    /// The service user's session (authenticators, the superuser).
    pub async fn service(&self) -> Result<Session, RunAsError> {
        Ok(self.link.client().await?.session().clone())
    }

    /// The session code running as `uid` calls with.
    pub async fn session(&self, uid: i64) -> Result<Session, RunAsError> {
        if uid == SUPERUSER_ID {
            return self.service().await;
        }
        let mut sessions = self.sessions.lock().await;
        match sessions.get(&uid) {
            Some(Known::Session(session)) => return Ok(session.clone()),
            Some(Known::Failed(error, at)) if at.elapsed() < FAILED_LOGIN_KEPT => {
                return Err(error.clone());
            }
            _ => {}
        }
        let result = self.log_in(uid).await;
        match &result {
            Ok(session) => {
                sessions.insert(uid, Known::Session(session.clone()));
            }
            // A transport failure says nothing about the credentials: not remembered.
            Err(RunAsError::Odoo(error)) if error.is_retryable() => {}
            Err(error) => {
                sessions.insert(uid, Known::Failed(error.clone(), Instant::now()));
            }
        }
        result
    }

    async fn log_in(&self, uid: i64) -> Result<Session, RunAsError> {
        let client = self.link.client().await?;
        let login = self.login_of(uid).await?;
        let key = self
            .credentials
            .get(&uid.to_string())
            .or_else(|| self.credentials.get(&login));
        let Some(key) = key else {
            return match self.policy {
                RunAsPolicy::Strict => Err(RunAsError::NoCredentials {
                    uid,
                    login: format!(" ({login})"),
                }),
                RunAsPolicy::Service => {
                    static FALLBACKS: LogThrottle = LogThrottle::new(60);
                    if FALLBACKS.report().is_some() {
                        log::warn!(
                            "webhook code of Odoo user {uid} ({login}) runs as the service user \
                             {:?}: no credentials in run_as_users (run_as_policy = service)",
                            client.session().login
                        );
                    }
                    Ok(client.session().clone())
                }
            };
        };
        let session = client
            .login(&login, key)
            .await
            .map_err(|error| match error {
                OdooError::LoginRefused { .. } => RunAsError::LoginFailed {
                    uid,
                    reason: format!("the API key configured for {login:?} was refused"),
                },
                other => RunAsError::Odoo(other),
            })?;
        if session.uid != uid {
            return Err(RunAsError::LoginFailed {
                uid,
                reason: format!(
                    "the API key configured for it belongs to user {} ({:?})",
                    session.uid, session.login
                ),
            });
        }
        Ok(session)
    }

    async fn login_of(&self, uid: i64) -> Result<String, RunAsError> {
        let client = self.link.client().await?;
        let rows = client
            .execute(
                &Call::on("res.users", "read", vec![uid])
                    .arg(json!(["login"]))
                    .kwarg("context", json!({"active_test": false})),
            )
            .await?;
        rows.get(0)
            .and_then(|row| row["login"].as_str())
            .map(String::from)
            .ok_or(RunAsError::NoCredentials {
                uid,
                login: " (no such user)".to_string(),
            })
    }
}
