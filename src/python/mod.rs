//! The embedded CPython: interpreter start-up, snippets, and the thread pool that runs them.

mod convert;
mod executor;
mod interpreter;
mod odoo_bridge;
mod snippet;

pub use executor::{CallJob, Engine, EngineError, EngineSettings, Outcome, SnippetVerdict};
pub use interpreter::{BUILT_FOR, InterpreterSettings, runtime_version, snippet_problem};
pub use odoo_bridge::OdooAccess;
pub use snippet::{SecretValues, Snippet, SnippetKind};
