//! A snippet as a worker holds it: its source and, once a call needed it, its validated and
//! compiled form.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;

use super::interpreter::Sandbox;
use crate::definitions::SnippetKind;

/// One snippet version, compiled at most once per worker.
pub struct LoadedSnippet {
    kind: SnippetKind,
    source: String,
    secrets: Vec<(String, Option<String>)>,
    prepared: PyOnceLock<Py<PyAny>>,
}

impl LoadedSnippet {
    pub fn new(kind: SnippetKind, source: String, secrets: Vec<(String, Option<String>)>) -> Self {
        Self {
            kind,
            source,
            secrets,
            prepared: PyOnceLock::new(),
        }
    }

    pub fn kind(&self) -> SnippetKind {
        self.kind
    }

    /// The sandbox's prepared object. Racing threads may both prepare it; one result wins,
    /// and nobody blocks while attached to the interpreter.
    pub(crate) fn prepared<'py>(
        &self,
        py: Python<'py>,
        sandbox: &Sandbox,
    ) -> PyResult<&Bound<'py, PyAny>> {
        let prepared = self.prepared.get_or_try_init(py, || {
            let secrets = PyDict::new(py);
            for (reference, value) in &self.secrets {
                secrets.set_item(reference, value.as_deref())?;
            }
            sandbox
                .prepare
                .call1(py, (self.kind.as_str(), self.source.as_str(), secrets))
        })?;
        Ok(prepared.bind(py))
    }
}
