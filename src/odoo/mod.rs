//! The Odoo external API: one client, three transports (JSON-RPC, XML-RPC, JSON-2).

mod client;
pub mod companion;
mod error;
mod json2;
mod jsonrpc;
mod link;
pub mod models;
pub mod run_as;
mod runtime;
pub mod setup;
mod single_flight;
mod snippet_calls;
mod transport;
mod xmlrpc;

pub use client::{ClientSettings, OdooClient, RpcObserver, ServerVersion};
pub use error::{ErrorKind, OdooError, ServerError};
pub use link::OdooLink;
pub use runtime::OdooRuntime;
pub(crate) use single_flight::SingleFlight;
pub use snippet_calls::{CallsAs, SnippetCalls, call_from};
pub use transport::{Call, Credentials, Protocol, Session, Transport, install_tls_provider};
