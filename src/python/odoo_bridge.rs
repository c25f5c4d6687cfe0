//! The host side of the Odoo objects in snippets (`env`, `user`, `tower`, ...): the sandbox's
//! ORM proxy calls `execute` on this bridge, which makes the RPC call in Rust, as the right
//! user, with the interpreter released while it waits.

use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use serde_json::{Map, Value};

use tokio::runtime::Handle;

use super::convert::{json_to_python, python_to_json};
use crate::odoo::{Call, OdooError, wait_on};
use crate::run_as::{RunAs, RunAsError};

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

/// What every bridge shares: the Odoo runtime, the connection, the run-as users.
pub struct OdooAccess {
    runtime: Handle,
    run_as: RunAs,
    /// Longest wait for one call (the snippet's deadline may cut it shorter).
    call_timeout: Duration,
}

impl OdooAccess {
    pub fn new(runtime: Handle, run_as: RunAs, call_timeout: Duration) -> Self {
        Self {
            runtime,
            run_as,
            call_timeout,
        }
    }

    async fn execute(
        self: Arc<Self>,
        kind: String,
        run_as_uid: i64,
        call: Call,
    ) -> Result<Value, RunAsError> {
        let session = if kind == "authenticator" {
            // The module runs authenticators with sudo: over RPC, the service user.
            self.run_as.service().await?
        } else {
            self.run_as.session(run_as_uid).await?
        };
        let client = self.run_as.link().client().await?;
        Ok(client.execute_as(&session, &call).await?)
    }

    /// `(uid, login)` of the user whose rights the snippet's calls carry.
    async fn principal(
        self: Arc<Self>,
        kind: String,
        run_as_uid: i64,
    ) -> Result<(i64, String), RunAsError> {
        let session = if kind == "authenticator" {
            self.run_as.service().await?
        } else {
            self.run_as.session(run_as_uid).await?
        };
        Ok((session.uid, session.login))
    }
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

/// One call's bridge: who the webhook code runs as, and how long the snippet has left.
#[pyclass(frozen)]
pub struct OdooBridge {
    access: Arc<OdooAccess>,
    run_as_uid: i64,
    /// Seconds left for the running snippet.
    remaining: Py<PyAny>,
}

impl OdooBridge {
    pub fn new(access: Arc<OdooAccess>, run_as_uid: i64, remaining: Py<PyAny>) -> Self {
        Self {
            access,
            run_as_uid,
            remaining,
        }
    }
}

#[pymethods]
impl OdooBridge {
    /// `("ok", value)` or `("error", exception name, message)`.
    // The sandbox's bridge protocol fixes these arguments.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (kind, model, method, ids, args, kwargs))]
    fn execute<'py>(
        &self,
        py: Python<'py>,
        kind: &str,
        model: String,
        method: String,
        ids: Option<Vec<i64>>,
        args: &Bound<'py, PyAny>,
        kwargs: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let args = match python_to_json(args)? {
            Value::Array(items) => items,
            Value::Null => Vec::new(),
            other => vec![other],
        };
        let kwargs = match python_to_json(kwargs)? {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let call = Call {
            model,
            method,
            ids,
            args,
            kwargs,
        };
        if let Some(reason) = refusal(&call) {
            return PyTuple::new(
                py,
                ["error", "odoo.exceptions.AccessError", reason.as_str()],
            );
        }
        let remaining: f64 = self.remaining.bind(py).call0()?.extract()?;
        let limit = if remaining.is_finite() {
            self.access
                .call_timeout
                .min(Duration::from_secs_f64(remaining.max(0.0)))
        } else {
            self.access.call_timeout
        };
        let access = Arc::clone(&self.access);
        let future = Arc::clone(&access).execute(kind.to_string(), self.run_as_uid, call);
        // The GIL is released while Odoo answers: other snippets run meanwhile.
        let answer = py.detach(|| wait_on(&access.runtime, limit, future));
        let (name, message) = match answer {
            Some(Ok(value)) => {
                let value = json_to_python(py, &value)?;
                return PyTuple::new(py, [pyo3::types::PyString::new(py, "ok").into_any(), value]);
            }
            Some(Err(error)) => describe(&error),
            None => (
                "towerhook.Unreachable".to_string(),
                format!("Odoo did not answer within {:.1} s", limit.as_secs_f64()),
            ),
        };
        PyTuple::new(py, ["error".to_string(), name, message])
    }

    /// `(uid, login)` of the user whose rights a snippet of `kind` uses: for webhook code
    /// the user its "Run as User" logs in as (the superuser's administrator, or the service
    /// user where towerhook falls back to it), for authenticators (sudo in the module) the
    /// service user. Asked before the snippet's time starts, within the Odoo timeout; when
    /// Odoo cannot tell, the snippet fails with the reason.
    fn user(&self, py: Python<'_>, kind: &str) -> PyResult<(i64, String)> {
        let access = Arc::clone(&self.access);
        let future = Arc::clone(&access).principal(kind.to_string(), self.run_as_uid);
        let limit = access.call_timeout;
        match py.detach(|| wait_on(&access.runtime, limit, future)) {
            Some(Ok(principal)) => Ok(principal),
            Some(Err(error)) => Err(pyo3::exceptions::PyRuntimeError::new_err(
                describe(&error).1,
            )),
            None => Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
                "Odoo did not answer within {:.1} s",
                limit.as_secs_f64()
            ))),
        }
    }

    /// The base context of the calls (empty: Odoo applies the user's own settings).
    fn context<'py>(&self, py: Python<'py>, _kind: &str) -> Bound<'py, PyDict> {
        PyDict::new(py)
    }
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
