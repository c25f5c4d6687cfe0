//! The worker's side of the Odoo objects in snippets (`env`, `user`, `tower`, ...): the
//! sandbox's ORM proxy calls `execute` on this bridge, which asks the server (the gate) to
//! make the RPC call and waits with the interpreter released. The worker holds no Odoo
//! credentials: the server makes every call as the user the call's webhook runs as.

use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use serde_json::Value;

use super::convert::{json_to_python, python_to_json};
use crate::definitions::SnippetKind;

/// An Odoo call a snippet makes, as the worker passes it on.
#[derive(Debug, Clone)]
pub struct OdooRequest {
    pub model: String,
    pub method: String,
    pub ids: Option<Vec<i64>>,
    pub args: Value,
    pub kwargs: Value,
}

/// Who makes Odoo calls for the snippets of one worker: the server, over the socket.
pub trait OdooGate: Send + Sync {
    /// Odoo's result, or `(exception name, message)`.
    fn execute(
        &self,
        job: u64,
        kind: SnippetKind,
        request: OdooRequest,
        limit: Duration,
    ) -> Result<Value, (String, String)>;

    /// `(uid, login)` of the user whose rights the snippet's calls carry.
    fn user(&self, job: u64, kind: SnippetKind, limit: Duration) -> Result<(i64, String), String>;
}

/// One call's bridge: which call it serves, and how long its snippet has left.
#[pyclass(frozen)]
pub struct OdooBridge {
    gate: Arc<dyn OdooGate>,
    job: u64,
    call_timeout: Duration,
    /// Seconds left for the running snippet.
    remaining: Py<PyAny>,
}

impl OdooBridge {
    pub fn new(
        gate: Arc<dyn OdooGate>,
        job: u64,
        call_timeout: Duration,
        remaining: Py<PyAny>,
    ) -> Self {
        Self {
            gate,
            job,
            call_timeout,
            remaining,
        }
    }
}

fn kind_of(kind: &str) -> SnippetKind {
    if kind == "authenticator" {
        SnippetKind::Authenticator
    } else {
        SnippetKind::Webhook
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
        let request = OdooRequest {
            model,
            method,
            ids,
            args: python_to_json(args)?,
            kwargs: python_to_json(kwargs)?,
        };
        let remaining: f64 = self.remaining.bind(py).call0()?.extract()?;
        let limit = if remaining.is_finite() {
            self.call_timeout
                .min(Duration::from_secs_f64(remaining.max(0.0)))
        } else {
            self.call_timeout
        };
        let (gate, job, kind) = (Arc::clone(&self.gate), self.job, kind_of(kind));
        // The GIL is released while Odoo answers: other snippets run meanwhile.
        match py.detach(move || gate.execute(job, kind, request, limit)) {
            Ok(value) => {
                let value = json_to_python(py, &value)?;
                PyTuple::new(py, [pyo3::types::PyString::new(py, "ok").into_any(), value])
            }
            Err((name, message)) => PyTuple::new(py, ["error".to_string(), name, message]),
        }
    }

    /// `(uid, login)` of the user whose rights a snippet of `kind` uses (the server
    /// knows: the webhook's "Run as User" as it logs in, or the service user). Asked
    /// before the snippet's time starts, within the Odoo timeout; when Odoo cannot tell,
    /// the snippet fails with the reason.
    fn user(&self, py: Python<'_>, kind: &str) -> PyResult<(i64, String)> {
        let (gate, job, kind, limit) = (
            Arc::clone(&self.gate),
            self.job,
            kind_of(kind),
            self.call_timeout,
        );
        py.detach(move || gate.user(job, kind, limit))
            .map_err(pyo3::exceptions::PyRuntimeError::new_err)
    }

    /// The base context of the calls (empty: Odoo applies the user's own settings).
    fn context<'py>(&self, py: Python<'py>, _kind: &str) -> Bound<'py, PyDict> {
        PyDict::new(py)
    }
}
