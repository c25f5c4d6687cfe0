//! Snippets run in a supervised pool of worker processes, the way Odoo's prefork workers
//! and gunicorn run requests: one embedded interpreter per worker, so that no snippet can
//! take the service down, and Python uses every core.
//!
//! The server keeps a bounded queue (a full one answers 503), hands each call to a worker
//! with a free snippet thread, and enforces every call's deadline: a worker that overruns
//! the snippet time limit plus a grace is killed (SIGKILL) and replaced, its call answered
//! "execution timed out". A worker that dies fails only the calls it was running, with the
//! cause. Workers are recycled after `worker_max_calls` calls and after any timeout, so
//! state a snippet leaves in a library lives only so long, in one worker. Odoo calls of
//! snippets come back to the server, which makes them as the call's run-as user.

pub mod protocol;
pub mod python;
pub mod shm;
mod supervisor;
pub mod worker;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::definitions::{Snippet, SnippetKind, Webhook};
use crate::odoo::SnippetCalls;
pub use protocol::{CallContext, Outcome, ShapedResponse, Verdict, WorkerConfig, WorkerLimits};

#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Worker processes kept running.
    pub workers: usize,
    /// Worker processes at most: more start while calls wait for a busy pool.
    pub max_workers: usize,
    /// Calls waiting for a worker before new ones are shed with 503.
    pub queue: usize,
    /// Wall-clock limit of one snippet.
    pub timeout: Duration,
    /// Longest wait for one Odoo call of a snippet.
    pub odoo_timeout: Duration,
    /// Calls after which a worker is replaced.
    pub max_calls: u64,
    /// The towerhook binary (it starts itself as a worker).
    pub program: PathBuf,
    /// What each worker starts with.
    pub config: WorkerConfig,
}

/// Why the pool gave no verdict.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PoolError {
    #[error("every snippet worker is busy and the queue is full")]
    Overloaded,
    #[error("the snippet workers have stopped")]
    Stopped,
    /// The worker ran past the snippet's time limit and was killed.
    #[error("execution timed out")]
    TimedOut { kind: SnippetKind },
    /// The worker died during the call (signal, abort, memory).
    #[error("{cause}")]
    WorkerDied { kind: SnippetKind, cause: String },
    /// The worker answered, but with an error of towerhook's own.
    #[error("{0}")]
    Worker(String),
}

/// What readiness and metrics see of the pool, without asking any worker.
#[derive(Debug, Default)]
pub struct PoolStatus {
    /// Workers started and ready for calls.
    pub ready: AtomicUsize,
    /// Calls running in workers.
    pub busy: AtomicUsize,
    /// Calls waiting for a worker.
    pub queued: AtomicUsize,
    /// Calls whose worker was killed for overrunning their time limit.
    pub killed_for_time: AtomicU64,
    /// Workers started or ended, by cause (`recycled`, `timeout`, `died`, `start_failed`;
    /// `grown`, `shrunk` for the extra workers of a busy pool).
    pub restarts: Mutex<std::collections::BTreeMap<&'static str, u64>>,
    /// The interpreter the workers run, once one is ready.
    pub python: Mutex<Option<String>>,
    /// Why the last worker could not start, while none is ready.
    pub start_problem: Mutex<Option<String>>,
    /// Process ids of the running workers.
    pub pids: Mutex<Vec<u32>>,
}

impl PoolStatus {
    fn count_restart(&self, cause: &'static str) {
        *self
            .restarts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(cause)
            .or_default() += 1;
    }
}

/// One call's work for a worker.
/// Who waits for a call's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A caller on the other end of the HTTP request.
    Caller,
    /// The delivery queue (towerhook extension, src/delivery): no caller's call is queued
    /// behind it in its worker (queued code is usually the slow kind).
    DeliveryQueue,
}

pub(crate) struct CallWork {
    pub webhook: Arc<Webhook>,
    pub headers: Vec<(String, String)>,
    pub raw_data: Bytes,
    /// JSON text.
    pub payload: String,
    pub context: protocol::CallContext,
    /// The call's span: the Odoo calls made for its snippets log under it.
    pub span: tracing::Span,
    /// Run for the delivery queue, not for a caller waiting: no call waits behind it in
    /// its worker (queued code is usually the slow kind).
    pub background: bool,
}

pub(crate) enum Command {
    Call(CallWork, oneshot::Sender<Result<Verdict, PoolError>>),
    Check(
        protocol::SnippetSource,
        oneshot::Sender<Result<Option<String>, PoolError>>,
    ),
    Shutdown(oneshot::Sender<()>),
}

// Cloned for the delivery queue's runner (towerhook extension, src/delivery): clones send
// to the same supervisor.
#[derive(Clone)]
pub struct Pool {
    commands: mpsc::UnboundedSender<Command>,
    status: Arc<PoolStatus>,
    queue: usize,
}

impl Pool {
    /// Starts the supervisor and the workers. With `odoo`, snippets get the Odoo objects.
    pub fn start(settings: PoolSettings, odoo: Option<Arc<SnippetCalls>>) -> std::io::Result<Self> {
        let status = Arc::new(PoolStatus::default());
        let queue = settings.queue;
        let commands = supervisor::start(settings, odoo, Arc::clone(&status))?;
        Ok(Self {
            commands,
            status,
            queue,
        })
    }

    /// Runs the call's authenticator and, if it allows, its webhook code, in a worker.
    pub async fn call(
        &self,
        webhook: Arc<Webhook>,
        headers: Vec<(String, String)>,
        raw_data: Bytes,
        payload: &Value,
        context: protocol::CallContext,
        origin: Origin,
    ) -> Result<Verdict, PoolError> {
        if self.status.queued.fetch_add(1, Ordering::AcqRel) >= self.queue {
            self.status.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(PoolError::Overloaded);
        }
        let work = CallWork {
            webhook,
            headers,
            raw_data,
            payload: payload.to_string(),
            context,
            span: tracing::Span::current(),
            background: origin == Origin::DeliveryQueue,
        };
        let (reply, answer) = oneshot::channel();
        if self.commands.send(Command::Call(work, reply)).is_err() {
            self.status.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(PoolError::Stopped);
        }
        answer.await.map_err(|_| PoolError::Stopped)?
    }

    /// Why a snippet cannot run (syntax, a construct the sandbox refuses), if it cannot.
    pub async fn check(&self, snippet: &Snippet) -> Result<Option<String>, PoolError> {
        let source = protocol::SnippetSource {
            kind: snippet.kind(),
            code: snippet.source().to_string(),
            secrets: snippet
                .secrets()
                .iter()
                .map(|(reference, value)| (reference.clone(), value.clone()))
                .collect(),
        };
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Check(source, reply))
            .map_err(|_| PoolError::Stopped)?;
        answer.await.map_err(|_| PoolError::Stopped)?
    }

    /// Waits until a worker is ready (its interpreter's version), or says why none is.
    pub async fn ready(&self, within: Duration) -> Result<String, String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(python) = self.python_version() {
                return Ok(python);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(self
                    .status
                    .start_problem
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone()
                    .unwrap_or_else(|| "no snippet worker started in time".into()));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn python_version(&self) -> Option<String> {
        self.status
            .python
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn status(&self) -> &PoolStatus {
        &self.status
    }

    /// Calls waiting for a worker.
    pub fn queue_depth(&self) -> usize {
        self.status.queued.load(Ordering::Acquire)
    }

    /// Why snippets cannot run right now, if they cannot.
    pub fn health_problem(&self) -> Option<String> {
        if self.status.ready.load(Ordering::Acquire) > 0 {
            return None;
        }
        let why = self
            .status
            .start_problem
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Some(match why {
            Some(why) => format!("no snippet worker is running: {why}"),
            None => "no snippet worker is running yet".into(),
        })
    }

    /// Ends the workers (after the calls in flight, which the HTTP drain waited for).
    pub async fn shutdown(&self) {
        let (done, stopped) = oneshot::channel();
        if self.commands.send(Command::Shutdown(done)).is_ok() {
            let _ = stopped.await;
        }
    }
}
