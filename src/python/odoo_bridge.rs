//! The host side of the Odoo objects in snippets (`env`, `user`, `tower`, ...): the sandbox's
//! ORM proxy calls `execute` on this bridge, which makes the RPC call in Rust, as the right
//! user, with the interpreter released while it waits.

use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use serde_json::{Map, Value};

use super::convert::{json_to_python, python_to_json};
use crate::odoo::{Call, OdooError};
use crate::run_as::{RunAs, RunAsError};

/// Longest wait for the service user's uid before a snippet starts.
const USER_LOOKUP_LIMIT: Duration = Duration::from_secs(2);

/// What every bridge shares: the RPC runtime, the connection, the run-as users.
pub struct OdooAccess {
    /// Taken out on drop: a runtime dropped inside another one's task would panic.
    runtime: Option<tokio::runtime::Runtime>,
    run_as: RunAs,
    /// Longest wait for one call (the snippet's deadline may cut it shorter).
    call_timeout: Duration,
}

impl OdooAccess {
    pub fn new(run_as: RunAs, call_timeout: Duration) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("towerhook-rpc")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the RPC runtime: {e}"))?;
        Ok(Self {
            runtime: Some(runtime),
            run_as,
            call_timeout,
        })
    }

    fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime
            .as_ref()
            .expect("the RPC runtime lives as long as its owner")
            .block_on(future)
    }

    async fn execute(&self, kind: &str, run_as_uid: i64, call: &Call) -> Result<Value, RunAsError> {
        let session = if kind == "authenticator" {
            // The module runs authenticators with sudo: over RPC, the service user.
            self.run_as.service().await?
        } else {
            self.run_as.session(run_as_uid).await?
        };
        let client = self.run_as.link().client().await?;
        Ok(client.execute_as(&session, call).await?)
    }
}

impl Drop for OdooAccess {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
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
        let remaining: f64 = self.remaining.bind(py).call0()?.extract()?;
        let limit = if remaining.is_finite() {
            self.access
                .call_timeout
                .min(Duration::from_secs_f64(remaining.max(0.0)))
        } else {
            self.access.call_timeout
        };
        let access = Arc::clone(&self.access);
        let (kind, uid) = (kind.to_string(), self.run_as_uid);
        // The GIL is released while Odoo answers: other snippets run meanwhile.
        let answer = py.detach(move || {
            access.block_on(async {
                tokio::time::timeout(limit, access.execute(&kind, uid, &call)).await
            })
        });
        let (name, message) = match answer {
            Ok(Ok(value)) => {
                let value = json_to_python(py, &value)?;
                return PyTuple::new(py, [pyo3::types::PyString::new(py, "ok").into_any(), value]);
            }
            Ok(Err(error)) => describe(&error),
            Err(_) => (
                "towerhook.Unreachable".to_string(),
                format!("Odoo did not answer within {:.1} s", limit.as_secs_f64()),
            ),
        };
        PyTuple::new(py, ["error".to_string(), name, message])
    }

    /// `(uid, login)` of the user a snippet of `kind` runs as (`login` may be None): the
    /// webhook's "Run as User", or for authenticators (sudo in the module) the service user.
    fn user(&self, py: Python<'_>, kind: &str) -> (i64, Option<String>) {
        if kind != "authenticator" {
            return (self.run_as_uid, None);
        }
        // Asked before the snippet's deadline starts: connecting (if still needed) is bounded.
        let link = self.access.run_as.link();
        let client = py.detach(|| {
            self.access
                .block_on(tokio::time::timeout(USER_LOOKUP_LIMIT, link.client()))
        });
        let uid = match client {
            Ok(Ok(client)) => client.session().uid,
            _ => 0,
        };
        (uid, Some(link.settings().login.clone()))
    }

    /// The base context of the calls (empty: Odoo applies the user's own settings).
    fn context<'py>(&self, py: Python<'py>, _kind: &str) -> Bound<'py, PyDict> {
        PyDict::new(py)
    }
}

/// An error as the sandbox raises it: Odoo's exception name and message.
fn describe(error: &RunAsError) -> (String, String) {
    match error {
        RunAsError::NoCredentials { .. } | RunAsError::LoginFailed { .. } => {
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
