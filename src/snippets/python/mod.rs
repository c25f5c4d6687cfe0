//! The embedded CPython of a snippet worker: interpreter start-up, snippets, the threads
//! that run them, and the Odoo objects they reach through the server. Only worker
//! processes (`pool::worker`) start an interpreter.

mod convert;
mod executor;
mod interpreter;
mod odoo_bridge;
mod snippet;

pub use executor::{CallJob, Engine, EngineSettings};
pub use interpreter::{BUILT_FOR, InterpreterSettings, Sandbox, sandbox, snippet_problem};
pub use odoo_bridge::{OdooGate, OdooRequest};
pub use snippet::LoadedSnippet;
