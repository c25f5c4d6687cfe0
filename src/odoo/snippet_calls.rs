//! The Odoo calls of snippets, made by the server for its workers: as the user the call's
//! webhook runs as (its "Run as User", logged in with the key configured for it), or as the
//! service user for authenticators (the module runs them with sudo). Workers name the call;
//! they never hold credentials.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::runtime::Handle;

use super::{Call, OdooError};
use crate::odoo::run_as::{RunAs, RunAsError};

/// Models whose records hold secret values (Cetmix's keys, their values and the vault)
/// and Odoo's API keys: closed to snippets whatever the user's rights, since the service
/// user (who may read them through the companion addon's group) runs every superuser
/// webhook and authenticator.
const SECRET_MODELS: &[&str] = &[
    "cx.tower.key",
    "cx.tower.key.value",
    "cx.tower.vault",
    "res.users.apikeys",
];
/// The companion addon's methods are towerhook's own: a snippet has no business with them.
const ADDON_METHOD_PREFIX: &str = "towerhook_";

/// Whose rights a snippet's call carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallsAs {
    /// The service user: authenticators (the module runs them with sudo).
    ServiceUser,
    /// The webhook's "Run as User".
    User(i64),
}

pub struct SnippetCalls {
    runtime: Handle,
    run_as: RunAs,
    /// Longest wait for one call.
    call_timeout: Duration,
}

impl SnippetCalls {
    /// `runtime`: the Odoo runtime, where every Odoo exchange runs (odoo/runtime.rs).
    pub fn new(runtime: Handle, run_as: RunAs, call_timeout: Duration) -> Self {
        Self {
            runtime,
            run_as,
            call_timeout,
        }
    }

    pub fn runtime(&self) -> &Handle {
        &self.runtime
    }

    /// Odoo's answer to a snippet's call, or `(exception name, message)`.
    pub async fn execute(
        self: Arc<Self>,
        calls_as: CallsAs,
        call: Call,
    ) -> Result<Value, (String, String)> {
        if let Some(reason) = refusal(&call) {
            return Err(("odoo.exceptions.AccessError".into(), reason));
        }
        let limit = self.call_timeout;
        let answer = tokio::time::timeout(limit, async {
            let session = self.session(calls_as).await?;
            let client = self.run_as.link().client().await?;
            Ok::<_, RunAsError>(client.execute_as(&session, &call).await?)
        })
        .await;
        match answer {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(describe(&error)),
            Err(_) => Err(unreachable(limit)),
        }
    }

    /// `(uid, login)` of the user whose rights the snippet's calls carry.
    pub async fn user(self: Arc<Self>, calls_as: CallsAs) -> Result<(i64, String), String> {
        let limit = self.call_timeout;
        match tokio::time::timeout(limit, self.session(calls_as)).await {
            Ok(Ok(session)) => Ok((session.uid, session.login)),
            Ok(Err(error)) => Err(describe(&error).1),
            Err(_) => Err(unreachable(limit).1),
        }
    }

    async fn session(&self, calls_as: CallsAs) -> Result<super::Session, RunAsError> {
        match calls_as {
            CallsAs::ServiceUser => self.run_as.service().await,
            CallsAs::User(uid) => self.run_as.session(uid).await,
        }
    }
}

/// A call from its parts as a snippet gave them (arguments as JSON).
pub fn call_from(
    model: String,
    method: String,
    ids: Option<Vec<i64>>,
    args: Value,
    kwargs: Value,
) -> Call {
    let args = match args {
        Value::Array(items) => items,
        Value::Null => Vec::new(),
        other => vec![other],
    };
    let kwargs = match kwargs {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    Call {
        model,
        method,
        ids,
        args,
        kwargs,
    }
}

fn unreachable(limit: Duration) -> (String, String) {
    (
        "towerhook.Unreachable".to_string(),
        format!("Odoo did not answer within {:.1} s", limit.as_secs_f64()),
    )
}

/// Why a snippet may not make this call, if it may not.
fn refusal(call: &Call) -> Option<String> {
    if call.method.starts_with(ADDON_METHOD_PREFIX) {
        return Some(format!(
            "You are not allowed to call {}.{} from webhook code (towerhook's own method)",
            call.model, call.method
        ));
    }
    SECRET_MODELS.contains(&call.model.as_str()).then(|| {
        format!(
            "You are not allowed to access '{}' ({}) records from webhook code: they hold \
             secret values",
            call.model, call.model
        )
    })
}

/// An error as the sandbox raises it: Odoo's exception name and message.
fn describe(error: &RunAsError) -> (String, String) {
    match error {
        RunAsError::NoCredentials { .. }
        | RunAsError::LoginFailed { .. }
        | RunAsError::SuperuserEntry => {
            ("towerhook.RunAsUnavailable".to_string(), error.to_string())
        }
        RunAsError::Odoo(OdooError::Server(server)) => {
            (server.name.clone(), server.message.clone())
        }
        RunAsError::Odoo(OdooError::LoginRefused { .. }) => (
            "odoo.exceptions.AccessDenied".to_string(),
            error.to_string(),
        ),
        RunAsError::Odoo(OdooError::Unsupported(message)) => {
            ("builtins.TypeError".to_string(), message.clone())
        }
        RunAsError::Odoo(other) => ("towerhook.Unreachable".to_string(), other.to_string()),
    }
}
