//! What the server and its snippet workers say to each other over their socket: frames of
//! a 4-byte little-endian length and a postcard-encoded message.
//!
//! A snippet's source (and the values of the secrets it references) crosses once per
//! worker and snippet version; calls name snippets by id. The worker never chooses whose
//! rights an Odoo call uses: it names its call, and the server knows the call's webhook.

use std::io::{self, Read};

use serde::{Deserialize, Serialize};

/// Largest frame either side accepts: a request body (`max_body_bytes`) plus headers and
/// payload fit well within it.
pub const MAX_FRAME: usize = 256 * 1024 * 1024;

pub use crate::definitions::{SnippetId, SnippetKind as Kind};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnippetSource {
    pub kind: Kind,
    pub code: String,
    /// The secrets the code references, with their values (`None`: no value).
    pub secrets: Vec<(String, Option<String>)>,
}

/// A snippet of a call: its id, and its source when this worker has not seen it yet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnippetRef {
    pub id: SnippetId,
    pub source: Option<SnippetSource>,
}

/// What the sandbox needs to know once, at the worker's start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerConfig {
    pub packages_dir: String,
    pub max_message_chars: usize,
    pub recursion_limit: u32,
    pub timeout_secs: f64,
    /// Snippet threads in the worker.
    pub threads: usize,
    /// Odoo objects (`env`, `user`, ...) are available (the Odoo source).
    pub odoo: bool,
    /// Longest wait for one Odoo call made for a snippet.
    pub odoo_timeout_secs: f64,
    pub outbound_proxy: Option<String>,
    pub outbound_timeout_secs: f64,
    /// Largest body a snippet's shaped `response` may have.
    pub max_response_bytes: usize,
    pub limits: WorkerLimits,
}

/// What a snippet knows of its call beyond the module's names (towerhook extensions:
/// `url`, `method`, `client_ip`, `request_id`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CallContext {
    /// The public URL as the sender called it (scheme, host, path and query).
    pub url: Option<String>,
    /// `GET` or `POST`.
    pub method: String,
    pub client_ip: Option<String>,
    pub request_id: String,
}

/// The answer a snippet shaped itself (`result["response"]`), already checked by the
/// sandbox: status 200–599, no hop-by-hop or framing headers, body within its limit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShapedResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub content_type: String,
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
}

/// What one worker process may use, set before its interpreter starts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerLimits {
    /// Data segment and anonymous memory (RLIMIT_DATA), in MiB; 0: unlimited.
    pub memory_mb: u64,
    /// Open file descriptors (RLIMIT_NOFILE).
    pub open_files: u64,
    /// CPU seconds one call may use (RLIMIT_CPU, moved on at every call); 0: unlimited.
    pub cpu_secs_per_call: u64,
    /// When started as root: the user to run as.
    pub user: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallFrame {
    pub job: u64,
    pub authenticator: SnippetRef,
    pub webhook: SnippetRef,
    pub headers: Vec<(String, String)>,
    #[serde(with = "serde_bytes")]
    pub raw_data: Vec<u8>,
    /// The payload as JSON text.
    pub payload: String,
    pub context: CallContext,
}

/// `CallFrame` as the server writes it, without copying the call's data: encodes exactly
/// as `ToWorker::Call(CallFrame { .. })`.
#[derive(Debug, Serialize)]
// Built only to be encoded at once; never stored.
#[allow(clippy::large_enum_variant)]
pub enum ToWorkerCall<'a> {
    /// Stands for `ToWorker::Start`: keeps the variant index of `Call`.
    Start(()),
    Call(CallFrameRef<'a>),
}

#[derive(Debug, Serialize)]
pub struct CallFrameRef<'a> {
    pub job: u64,
    pub authenticator: SnippetRef,
    pub webhook: SnippetRef,
    pub headers: &'a [(String, String)],
    #[serde(with = "serde_bytes")]
    pub raw_data: &'a [u8],
    pub payload: &'a str,
    pub context: &'a CallContext,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ToWorker {
    /// First frame: the worker starts its interpreter with these settings.
    Start(WorkerConfig),
    Call(CallFrame),
    /// Why a snippet cannot run, if it cannot (`towerhook check`).
    Check {
        request: u64,
        snippet: SnippetSource,
    },
    /// The answer to a worker's `Odoo` request.
    Answer {
        request: u64,
        answer: OdooAnswer,
    },
    /// Give back those of these calls no snippet thread has taken yet.
    Release {
        jobs: Vec<u64>,
    },
}

/// An Odoo call a snippet makes, performed by the server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum OdooAsk {
    Execute {
        kind: Kind,
        model: String,
        method: String,
        ids: Option<Vec<i64>>,
        /// JSON text of the positional and keyword arguments.
        args: String,
        kwargs: String,
    },
    /// Who the snippet's calls run as.
    User { kind: Kind },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum OdooAnswer {
    /// JSON text of the result.
    Value(String),
    /// `(uid, login)` of the user.
    User(i64, String),
    /// Odoo's (or towerhook's) exception name and message.
    Error { name: String, message: String },
}

/// How a call ended in the worker, shaped as the module's controller shapes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verdict {
    /// `ok`, `auth_failed` or `code_failed`.
    pub outcome: Outcome,
    pub http_status: u16,
    /// `json.dumps(message)`.
    pub message_json: String,
    /// `str(message)`.
    pub message_text: String,
    /// Snippet time, in microseconds.
    pub micros: u64,
    /// A snippet ran into its time limit: the worker's state is suspect.
    pub timed_out: bool,
    /// The answer the snippet shaped itself, if it did.
    pub response: Option<ShapedResponse>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Authenticator allowed, webhook code succeeded.
    Ok,
    /// Authenticator denied or failed; the webhook code did not run.
    AuthFailed,
    /// Webhook code failed (exception, non-zero exit_code, timeout).
    CodeFailed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum FromWorker {
    /// The interpreter is up: `3.11.7 (/prefix)`.
    Ready { python: String },
    /// A call's verdict, or why the worker could not produce one.
    Done {
        job: u64,
        verdict: Result<Verdict, String>,
    },
    Checked {
        request: u64,
        problem: Option<String>,
    },
    Odoo {
        request: u64,
        job: u64,
        ask: OdooAsk,
    },
    /// The calls given back (never started here).
    Released { jobs: Vec<u64> },
}

/// One frame, ready to write.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    let mut frame =
        postcard::to_extend(message, vec![0u8; 4]).expect("towerhook's own messages always encode");
    let length = (frame.len() - 4) as u32;
    frame[..4].copy_from_slice(&length.to_le_bytes());
    frame
}

pub fn decode<'a, T: Deserialize<'a>>(body: &'a [u8]) -> io::Result<T> {
    postcard::from_bytes(body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Reads one frame's body from a blocking reader; `None` at a clean end of stream.
pub fn read_frame(reader: &mut impl Read, body: &mut Vec<u8>) -> io::Result<Option<()>> {
    let mut length = [0u8; 4];
    match reader.read_exact(&mut length) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(error) => return Err(error),
    }
    let length = u32::from_le_bytes(length) as usize;
    if length > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {length} bytes"),
        ));
    }
    body.resize(length, 0);
    reader.read_exact(body)?;
    Ok(Some(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let call = ToWorker::Call(CallFrame {
            job: 7,
            authenticator: SnippetRef {
                id: SnippetId([1; 16]),
                source: Some(SnippetSource {
                    kind: Kind::Authenticator,
                    code: "result = {'allowed': True}".into(),
                    secrets: vec![("token".into(), None)],
                }),
            },
            webhook: SnippetRef {
                id: SnippetId([2; 16]),
                source: None,
            },
            headers: vec![("X-A".into(), "b".into())],
            raw_data: b"\x00\xff body".to_vec(),
            payload: "{\"a\": 1}".into(),
            context: CallContext {
                url: Some("https://example.com/cetmix_tower_webhooks/a?b=1".into()),
                method: "POST".into(),
                client_ip: None,
                request_id: "r1".into(),
            },
        });
        let frame = encode(&call);
        let ToWorker::Call(owned) = &call else {
            unreachable!()
        };
        let borrowed = ToWorkerCall::Call(CallFrameRef {
            job: owned.job,
            authenticator: owned.authenticator.clone(),
            webhook: owned.webhook.clone(),
            headers: &owned.headers,
            raw_data: &owned.raw_data,
            payload: &owned.payload,
            context: &owned.context,
        });
        assert_eq!(encode(&borrowed), frame, "both forms encode alike");
        let mut body = Vec::new();
        read_frame(&mut frame.as_slice(), &mut body)
            .unwrap()
            .unwrap();
        let ToWorker::Call(back) = decode::<ToWorker>(&body).unwrap() else {
            panic!("not a call");
        };
        assert_eq!(back.job, 7);
        assert_eq!(back.raw_data, b"\x00\xff body");
        assert_eq!(back.webhook.id, SnippetId([2; 16]));
        let mut empty: &[u8] = &[];
        assert!(read_frame(&mut empty, &mut body).unwrap().is_none());
    }
}
