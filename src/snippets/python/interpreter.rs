//! The one embedded CPython of the process and the sandbox package loaded into it.

use std::path::Path;
use std::sync::OnceLock;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

/// A module of `python_sandbox/towerhook_sandbox`, compiled into the binary by build.rs.
pub struct EmbeddedModule {
    pub name: &'static str,
    pub path: &'static str,
    pub is_package: bool,
    pub source: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/sandbox_sources.rs"));

const BOOTSTRAP: &str = include_str!("bootstrap.py");

/// `major.minor` of the Python towerhook was built against; a different one at run time
/// means the binary loaded the wrong libpython.
pub const BUILT_FOR: &str = env!("BUILD_PYTHON_MAJOR_MINOR");

/// Settings the interpreter takes once, at start.
#[derive(Debug, Clone)]
pub struct InterpreterSettings {
    pub packages_dir: std::path::PathBuf,
    pub max_message_chars: usize,
    pub recursion_limit: u32,
    pub timeout_secs: f64,
    /// Proxy URL of snippets' outgoing HTTP requests (None: direct).
    pub outbound_proxy: Option<String>,
    /// Timeout of a snippet's HTTP request that sets none.
    pub outbound_timeout_secs: f64,
    /// Largest body of a snippet's shaped response.
    pub max_response_bytes: usize,
}

/// Handles on the sandbox's entry points.
pub struct Sandbox {
    pub prepare: Py<PyAny>,
    pub run_call: Py<PyAny>,
    pub timeout_exception: Py<PyAny>,
    /// `json.loads`: payloads are read as the module's werkzeug reads them.
    pub json_loads: Py<PyAny>,
    /// e.g. `3.11.7 (/root/.pyenv/versions/3.11.7)`.
    pub version: String,
}

static SANDBOX: OnceLock<Result<Sandbox, String>> = OnceLock::new();

/// Starts the interpreter and imports the sandbox, once per process. Later calls return
/// the first result whatever their settings (one interpreter per process).
pub fn sandbox(settings: &InterpreterSettings) -> Result<&'static Sandbox, String> {
    SANDBOX
        .get_or_init(|| {
            Python::initialize();
            Python::attach(|py| load(py, settings)).map_err(|e| {
                Python::attach(|py| {
                    format!("cannot start the Python sandbox: {}", describe(py, &e))
                })
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

fn load(py: Python<'_>, settings: &InterpreterSettings) -> PyResult<Sandbox> {
    let bootstrap = PyModule::from_code(
        py,
        &std::ffi::CString::new(BOOTSTRAP)?,
        c"<towerhook bootstrap>",
        c"towerhook_bootstrap",
    )?;
    let modules = PyDict::new(py);
    for module in SANDBOX_SOURCES {
        modules.set_item(
            module.name,
            PyTuple::new(
                py,
                [
                    module.path.into_pyobject(py)?.into_any(),
                    module.source.into_pyobject(py)?.into_any(),
                    pyo3::types::PyBool::new(py, module.is_package)
                        .to_owned()
                        .into_any(),
                ],
            )?,
        )?;
    }
    let version: String = bootstrap
        .getattr("install")?
        .call1((modules, path_text(&settings.packages_dir)))?
        .extract()?;
    let (major, minor): (u8, u8) = py
        .import("sys")?
        .getattr("version_info")?
        .extract::<(u8, u8, u8, String, u8)>()
        .map(|v| (v.0, v.1))?;
    if format!("{major}.{minor}") != BUILT_FOR {
        return Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
            "loaded Python {version}, but towerhook was built for {BUILT_FOR}: the wrong \
             libpython was picked up (see README, 'Python')"
        )));
    }

    let package = py.import("towerhook_sandbox")?;
    let configuration = PyDict::new(py);
    configuration.set_item("max_message_chars", settings.max_message_chars)?;
    configuration.set_item("recursion_limit", settings.recursion_limit)?;
    configuration.set_item("timeout_seconds", settings.timeout_secs)?;
    configuration.set_item("outbound_proxy", settings.outbound_proxy.as_deref())?;
    configuration.set_item("outbound_timeout_seconds", settings.outbound_timeout_secs)?;
    configuration.set_item("max_response_bytes", settings.max_response_bytes)?;
    package.getattr("configure")?.call1((configuration,))?;
    Ok(Sandbox {
        prepare: package.getattr("prepare")?.unbind(),
        run_call: package.getattr("run_call")?.unbind(),
        timeout_exception: package.getattr("SnippetTimeout")?.unbind(),
        json_loads: py.import("json")?.getattr("loads")?.unbind(),
        version,
    })
}

fn path_text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Why a snippet cannot run (syntax, a construct the sandbox refuses), if it cannot:
/// what every call to it would answer.
pub fn snippet_problem(
    sandbox: &Sandbox,
    snippet: &super::LoadedSnippet,
) -> Result<Option<String>, String> {
    Python::attach(|py| {
        let prepared = snippet.prepared(py, sandbox)?;
        prepared.getattr("error")?.extract::<Option<String>>()
    })
    .map_err(|e| Python::attach(|py| describe(py, &e)))
}

/// `Type: message` of a Python exception, for operator-facing errors.
pub fn describe(py: Python<'_>, error: &PyErr) -> String {
    let type_name = error
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "Exception".into());
    match error.value(py).str() {
        Ok(text) => format!("{type_name}: {text}"),
        Err(_) => type_name,
    }
}
