//! A snippet's source and, once a call needed it, its validated and compiled form.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;

use super::interpreter::Sandbox;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnippetKind {
    Authenticator,
    Webhook,
}

impl SnippetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SnippetKind::Authenticator => "authenticator",
            SnippetKind::Webhook => "webhook",
        }
    }
}

/// Values of the secrets a snippet references, by reference (`None`: unknown secret).
pub type SecretValues = BTreeMap<String, Option<String>>;

/// One version of a snippet. A new definition (or new secret values) is a new `Snippet`, so
/// validation and compilation run once per version, never per call.
pub struct Snippet {
    kind: SnippetKind,
    source: String,
    secrets: Arc<SecretValues>,
    prepared: PyOnceLock<Py<PyAny>>,
}

impl Snippet {
    pub fn new(kind: SnippetKind, source: &str) -> Self {
        Self::with_secrets(kind, source, Arc::default())
    }

    pub fn with_secrets(kind: SnippetKind, source: &str, secrets: Arc<SecretValues>) -> Self {
        Self {
            kind,
            source: source.to_string(),
            secrets,
            prepared: PyOnceLock::new(),
        }
    }

    pub fn kind(&self) -> SnippetKind {
        self.kind
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn secrets(&self) -> &SecretValues {
        &self.secrets
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
            for (reference, value) in self.secrets.iter() {
                secrets.set_item(reference, value.as_deref())?;
            }
            sandbox
                .prepare
                .call1(py, (self.kind.as_str(), self.source.as_str(), secrets))
        })?;
        Ok(prepared.bind(py))
    }
}

impl fmt::Debug for Snippet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snippet")
            .field("kind", &self.kind)
            .field("source", &self.source)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}
