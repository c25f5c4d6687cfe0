//! Errors of the Odoo client: what failed, whether retrying can help, and Odoo's own
//! exception name and message when Odoo answered with one.

/// The exceptions towerhook tells apart; everything else is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Wrong credentials on an object call.
    AccessDenied,
    /// Missing access rights (model, record rule, private method).
    AccessError,
    /// The record no longer exists.
    MissingError,
    ValidationError,
    UserError,
    Other,
}

/// An exception raised inside Odoo, as its error envelope names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    /// Python path of the exception, e.g. `odoo.exceptions.AccessError`.
    pub name: String,
    pub message: String,
}

impl ServerError {
    pub fn kind(&self) -> ErrorKind {
        match self.name.rsplit('.').next().unwrap_or_default() {
            "AccessDenied" => ErrorKind::AccessDenied,
            "AccessError" => ErrorKind::AccessError,
            "MissingError" => ErrorKind::MissingError,
            "ValidationError" => ErrorKind::ValidationError,
            "UserError" | "RedirectWarning" => ErrorKind::UserError,
            _ => ErrorKind::Other,
        }
    }

    /// The class name without its module, as snippets know it (`AccessError`).
    pub fn short_name(&self) -> &str {
        self.name.rsplit('.').next().unwrap_or(&self.name)
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum OdooError {
    /// No answer: connection refused, DNS, TLS, timeout.
    #[error("cannot reach Odoo at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// An HTTP status that is not Odoo answering (a proxy's 502, a 404 for a missing route).
    #[error("Odoo at {url} answered HTTP {status}: {excerpt}")]
    Status {
        url: String,
        status: u16,
        excerpt: String,
    },
    /// Odoo raised an exception.
    #[error("{}: {}", .0.name, .0.message)]
    Server(ServerError),
    /// `authenticate` said no.
    #[error(
        "Odoo at {url} refused the login {login:?} on database {database:?}: wrong login or API \
         key (or the key expired){hint}"
    )]
    LoginRefused {
        url: String,
        database: String,
        login: String,
        /// Extra advice for the transport in use, starting with "; " when present.
        hint: &'static str,
    },
    /// An answer towerhook cannot read.
    #[error("unexpected answer from Odoo at {url}: {reason}")]
    Protocol { url: String, reason: String },
    /// A call the chosen transport cannot express.
    #[error("{0}")]
    Unsupported(String),
}

impl OdooError {
    /// Transport failures and 5xx statuses only: an Odoo exception or a refused login will
    /// not change by asking again (and repeated failed logins lock the address out).
    pub fn is_retryable(&self) -> bool {
        match self {
            OdooError::Unreachable { .. } => true,
            OdooError::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }

    pub fn server(&self) -> Option<&ServerError> {
        match self {
            OdooError::Server(error) => Some(error),
            _ => None,
        }
    }

    pub fn kind(&self) -> Option<ErrorKind> {
        self.server().map(ServerError::kind)
    }
}

/// The first characters of a body, on one line, for error messages.
pub(crate) fn excerpt(body: &str) -> String {
    let flat: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}
