//! Whose rights webhook code uses over RPC: the webhook's "Run as User", logged in with the
//! API key configured for it (`run_as_users`). The superuser (the module's default) cannot
//! log in: it runs as the administrator given for it (`1 = "<login>:<api key>"`), or else
//! as the service user, who is what the module's `sudo` becomes over RPC.

use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::configuration::RunAsPolicy;
use crate::odoo::models::SUPERUSER_ID;
use crate::odoo::{Call, OdooError, OdooLink, Session, SingleFlight};
use crate::telemetry::throttle::LogThrottle;

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
    #[error(
        "run_as_users entry for the superuser (1) must be \"<login>:<api key>\" of an \
         administrator: the superuser itself cannot log in"
    )]
    SuperuserEntry,
    #[error(transparent)]
    Odoo(#[from] OdooError),
}

impl RunAsError {
    /// How long the failure is answered from memory: transport failures say nothing about
    /// the credentials and are not kept.
    fn kept_for(&self) -> Duration {
        match self {
            RunAsError::Odoo(error) if error.is_retryable() => Duration::ZERO,
            _ => FAILED_LOGIN_KEPT,
        }
    }
}

/// Who the code of a webhook really runs as, for the snippet's `uid`/`user` and for
/// `check`.
#[derive(Debug, Clone, PartialEq)]
pub enum Principal {
    /// Logged in with its own key (or the superuser's administrator).
    Own,
    /// No key configured, `run_as_policy = "service"`, or the superuser without an
    /// administrator: the service user's rights.
    Service,
}

pub struct RunAs {
    link: Arc<OdooLink>,
    /// user id or login → API key (`login:key` for the superuser).
    credentials: BTreeMap<String, SecretString>,
    policy: RunAsPolicy,
    sessions: SingleFlight<i64, (Session, Principal), RunAsError>,
}

impl RunAs {
    pub fn new(
        link: Arc<OdooLink>,
        credentials: BTreeMap<String, SecretString>,
        policy: RunAsPolicy,
    ) -> Self {
        Self {
            link,
            credentials,
            policy,
            sessions: SingleFlight::default(),
        }
    }

    pub fn link(&self) -> &Arc<OdooLink> {
        &self.link
    }

    /// The service user's session (authenticators: the module runs them with sudo).
    pub async fn service(&self) -> Result<Session, RunAsError> {
        Ok(self.link.client().await?.session().clone())
    }

    /// The session code running as `uid` calls with.
    pub async fn session(&self, uid: i64) -> Result<Session, RunAsError> {
        self.resolve(uid).await.map(|(session, _)| session)
    }

    /// The session for `uid` and whose rights it carries. Concurrent callers for the same
    /// user share one login; other users' calls never wait for it.
    pub async fn resolve(&self, uid: i64) -> Result<(Session, Principal), RunAsError> {
        if uid == SUPERUSER_ID && self.superuser_entry().is_none() {
            return Ok((self.service().await?, Principal::Service));
        }
        let (link, credentials, policy) = (
            Arc::clone(&self.link),
            self.credentials.clone(),
            self.policy,
        );
        self.sessions
            .get(&uid, RunAsError::kept_for, move || {
                log_in(link, credentials, policy, uid)
            })
            .await
    }

    fn superuser_entry(&self) -> Option<&SecretString> {
        self.credentials
            .get(&SUPERUSER_ID.to_string())
            .or_else(|| self.credentials.get("__system__"))
    }
}

async fn log_in(
    link: Arc<OdooLink>,
    credentials: BTreeMap<String, SecretString>,
    policy: RunAsPolicy,
    uid: i64,
) -> Result<(Session, Principal), RunAsError> {
    let client = link.client().await?;
    if uid == SUPERUSER_ID {
        let entry = credentials
            .get(&SUPERUSER_ID.to_string())
            .or_else(|| credentials.get("__system__"))
            .ok_or(RunAsError::SuperuserEntry)?;
        let (login, key) = entry
            .expose_secret()
            .split_once(':')
            .ok_or(RunAsError::SuperuserEntry)?;
        let session = client
            .login(login.trim(), key.trim())
            .await
            .map_err(|error| refused(uid, login, error))?;
        return Ok((session, Principal::Own));
    }
    let login = login_of(&link, uid).await?;
    let key = credentials
        .get(&uid.to_string())
        .or_else(|| credentials.get(&login));
    let Some(key) = key else {
        return match policy {
            RunAsPolicy::Strict => Err(RunAsError::NoCredentials {
                uid,
                login: format!(" ({login})"),
            }),
            RunAsPolicy::Service => {
                static FALLBACKS: LogThrottle = LogThrottle::new(60);
                if FALLBACKS.report().is_some() {
                    tracing::warn!(
                        "webhook code of Odoo user {uid} ({login}) runs as the service user \
                         {:?}: no credentials in run_as_users (run_as_policy = service)",
                        client.session().login
                    );
                }
                Ok((client.session().clone(), Principal::Service))
            }
        };
    };
    let session = client
        .login(&login, key.expose_secret())
        .await
        .map_err(|error| refused(uid, &login, error))?;
    if session.uid != uid {
        return Err(RunAsError::LoginFailed {
            uid,
            reason: format!(
                "the API key configured for it belongs to user {} ({:?})",
                session.uid, session.login
            ),
        });
    }
    Ok((session, Principal::Own))
}

fn refused(uid: i64, login: &str, error: OdooError) -> RunAsError {
    match error {
        OdooError::LoginRefused { .. } => RunAsError::LoginFailed {
            uid,
            reason: format!("the API key configured for {login:?} was refused"),
        },
        other => RunAsError::Odoo(other),
    }
}

async fn login_of(link: &OdooLink, uid: i64) -> Result<String, RunAsError> {
    let client = link.client().await?;
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
