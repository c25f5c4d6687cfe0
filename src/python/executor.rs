//! The pool of threads that run snippets, fed by a bounded queue, and the watchdog that
//! interrupts snippets running past their wall-clock limit.
//!
//! Snippets never run on actix's worker threads: a handler hands a job to this pool and
//! awaits the reply. The threads share the one GIL; a snippet waiting on I/O releases it,
//! so slow snippets overlap while CPU-bound ones take turns as in any CPython program.

use std::os::raw::c_long;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};
use serde_json::Value;
use tokio::sync::oneshot;

use super::convert::{headers_to_python, json_to_python};
use super::interpreter::{InterpreterSettings, Sandbox, describe, sandbox};
use super::odoo_bridge::{OdooAccess, OdooBridge};
use crate::definitions::Webhook;
use crate::request::RequestHeaders;

/// Stack of a snippet thread: deep recursion must end in RecursionError, not in a Rust
/// stack overflow that aborts the process.
const THREAD_STACK_BYTES: usize = 8 * 1024 * 1024;
/// How often the watchdog looks, and how often it re-injects into a snippet that caught
/// the timeout and kept going.
const WATCHDOG_TICK: Duration = Duration::from_millis(10);
const REINJECT_EVERY: Duration = Duration::from_millis(50);

#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub threads: usize,
    pub queue: usize,
    pub timeout: Duration,
    /// A snippet still running this long after its deadline is stuck in a call that cannot
    /// be interrupted; its thread is written off and replaced.
    pub stuck_after: Duration,
    pub interpreter: InterpreterSettings,
}

/// What a call asks of the snippets: its webhook (and so its authenticator) and the request.
pub struct CallJob {
    pub webhook: Arc<Webhook>,
    pub headers: Arc<RequestHeaders>,
    pub raw_data: Bytes,
    pub payload: Arc<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Authenticator allowed, webhook code succeeded.
    Ok,
    /// Authenticator denied or failed; the webhook code did not run.
    AuthFailed,
    /// Webhook code failed (exception, non-zero exit_code, timeout).
    CodeFailed,
}

/// The snippets' answer, already shaped as the module's controller shapes it.
#[derive(Debug, Clone)]
pub struct SnippetVerdict {
    pub outcome: Outcome,
    pub http_status: u16,
    /// `json.dumps(message)`, ready for `{"message": ...}`.
    pub message_json: String,
    /// `str(message)`, for the log.
    pub message_text: String,
    /// How long the snippets ran (not counting the wait for a thread).
    pub duration: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("all snippet threads are busy and the queue is full")]
    Overloaded,
    #[error("the snippet engine has stopped")]
    Stopped,
    #[error("towerhook sandbox failure: {0}")]
    Sandbox(String),
}

struct Job {
    call: CallJob,
    reply: oneshot::Sender<Result<SnippetVerdict, EngineError>>,
}

pub struct Engine {
    jobs: Sender<Job>,
    shared: Arc<Shared>,
    timeout: Duration,
}

struct Shared {
    sandbox: &'static Sandbox,
    receiver: Receiver<Job>,
    slots: Mutex<Vec<Arc<Slot>>>,
    epoch: Instant,
    settings: EngineSettings,
    shutdown: AtomicBool,
    live_threads: AtomicUsize,
    stuck_threads: AtomicUsize,
    /// Jobs that failed with a panic of towerhook's own code.
    panics: AtomicUsize,
    odoo: Option<Arc<OdooAccess>>,
}

/// One snippet thread as the watchdog sees it. Times are nanoseconds since `Shared::epoch`,
/// 0 meaning none; they change only while the owning thread holds the GIL, and the watchdog
/// re-reads them while holding it, so an injection always targets the snippet it means.
#[derive(Default)]
struct Slot {
    python_thread: AtomicU64,
    deadline: AtomicU64,
    last_injection: AtomicU64,
    stuck: AtomicBool,
}

impl Engine {
    /// Starts the interpreter (once per process), the snippet threads and the watchdog.
    /// With `odoo`, snippets get the Odoo objects (`env`, `user`, ...) over RPC.
    pub fn start(settings: EngineSettings, odoo: Option<Arc<OdooAccess>>) -> Result<Self, String> {
        let sandbox = sandbox(&settings.interpreter)?;
        let (jobs, receiver) = crossbeam_channel::bounded(settings.queue);
        let shared = Arc::new(Shared {
            sandbox,
            receiver,
            slots: Mutex::new(Vec::new()),
            epoch: Instant::now(),
            settings: settings.clone(),
            shutdown: AtomicBool::new(false),
            live_threads: AtomicUsize::new(0),
            stuck_threads: AtomicUsize::new(0),
            panics: AtomicUsize::new(0),
            odoo,
        });
        for _ in 0..settings.threads {
            spawn_worker(&shared).map_err(|e| format!("cannot start a snippet thread: {e}"))?;
        }
        let watched = Arc::clone(&shared);
        thread::Builder::new()
            .name("towerhook-watchdog".into())
            .spawn(move || watchdog(&watched))
            .map_err(|e| format!("cannot start the snippet watchdog: {e}"))?;
        Ok(Self {
            jobs,
            shared,
            timeout: settings.timeout,
        })
    }

    /// Runs the call's authenticator and, if it allows, its webhook code.
    pub async fn run_call(&self, call: CallJob) -> Result<SnippetVerdict, EngineError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .try_send(Job { call, reply })
            .map_err(|error| match error {
                TrySendError::Full(_) => EngineError::Overloaded,
                TrySendError::Disconnected(_) => EngineError::Stopped,
            })?;
        answer.await.map_err(|_| EngineError::Stopped)?
    }

    /// Calls waiting for a snippet thread.
    pub fn queue_depth(&self) -> usize {
        self.jobs.len()
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn python_version(&self) -> &str {
        &self.shared.sandbox.version
    }

    /// Why the engine cannot be trusted to answer, if it cannot.
    pub fn health_problem(&self) -> Option<String> {
        let live = self.shared.live_threads.load(Ordering::Relaxed);
        let stuck = self.shared.stuck_threads.load(Ordering::Relaxed);
        if live <= stuck {
            return Some("no snippet thread can run snippets".to_string());
        }
        (stuck > 0).then(|| {
            format!(
                "{stuck} snippet thread(s) stuck in a call that cannot be interrupted; \
                 restart towerhook if this persists"
            )
        })
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Relaxed);
    }
}

fn spawn_worker(shared: &Arc<Shared>) -> std::io::Result<()> {
    let slot = Arc::new(Slot::default());
    shared
        .slots
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Arc::clone(&slot));
    let shared = Arc::clone(shared);
    let number = shared.live_threads.fetch_add(1, Ordering::Relaxed) + 1;
    thread::Builder::new()
        .name(format!("towerhook-py-{number}"))
        .stack_size(THREAD_STACK_BYTES)
        .spawn(move || worker(&shared, &slot))
        .map(drop)
}

fn worker(shared: &Arc<Shared>, slot: &Arc<Slot>) {
    let guard = Python::attach(|py| {
        slot.python_thread.store(
            unsafe { pyo3::ffi::PyThread_get_thread_ident() } as u64,
            Ordering::Relaxed,
        );
        Py::new(
            py,
            SnippetGuard {
                slot: Arc::clone(slot),
                epoch: shared.epoch,
                limit: shared.settings.timeout,
            },
        )
    });
    let guard = match guard {
        Ok(guard) => guard,
        Err(e) => {
            log::error!("snippet thread cannot start: {e}");
            return;
        }
    };
    while let Ok(Job { call, reply }) = shared.receiver.recv() {
        // A defect of towerhook's own code in this job fails the job, not the thread: the
        // pool must never shrink behind the callers' backs.
        let verdict = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Python::attach(|py| run(py, shared, &guard, &call))
        }))
        .unwrap_or_else(|panic| {
            shared.panics.fetch_add(1, Ordering::Relaxed);
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            log::error!("a snippet job failed inside towerhook: {what}");
            Err(EngineError::Sandbox(format!("towerhook defect: {what}")))
        });
        Python::attach(|_| {
            // Nothing of this job may reach the next one: no deadline, no pending timeout.
            slot.deadline.store(0, Ordering::Relaxed);
            // SAFETY: the thread id is this thread's own, read when it attached; clearing
            // a pending asynchronous exception needs the GIL, which `attach` holds.
            unsafe {
                pyo3::ffi::PyThreadState_SetAsyncExc(
                    slot.python_thread.load(Ordering::Relaxed) as c_long,
                    std::ptr::null_mut(),
                );
            }
        });
        drop(call);
        let _ = reply.send(verdict);
        if slot.stuck.load(Ordering::Relaxed) {
            // The watchdog already started a replacement; this thread retires.
            shared.stuck_threads.fetch_sub(1, Ordering::Relaxed);
            log::warn!("a stuck snippet thread finished at last and retired");
            break;
        }
    }
    shared.live_threads.fetch_sub(1, Ordering::Relaxed);
}

fn run(
    py: Python<'_>,
    shared: &Shared,
    guard: &Py<SnippetGuard>,
    call: &CallJob,
) -> Result<SnippetVerdict, EngineError> {
    let sandbox = shared.sandbox;
    let started = Instant::now();
    let attempt = || -> PyResult<(String, u16, String, String)> {
        let authenticator = call.webhook.authenticator.code.prepared(py, sandbox)?;
        let webhook = call.webhook.code.prepared(py, sandbox)?;
        let context = PyDict::new(py);
        context.set_item("guard", guard.bind(py))?;
        context.set_item("timeout_seconds", shared.settings.timeout.as_secs_f64())?;
        context.set_item(
            "max_message_chars",
            shared.settings.interpreter.max_message_chars,
        )?;
        if let Some(access) = &shared.odoo {
            let remaining = guard.bind(py).getattr("remaining")?.unbind();
            let bridge = OdooBridge::new(Arc::clone(access), call.webhook.user_id, remaining);
            context.set_item("odoo", Py::new(py, bridge)?)?;
        }
        let answer = sandbox.run_call.bind(py).call1((
            authenticator,
            webhook,
            headers_to_python(py, &call.headers)?,
            PyBytes::new(py, &call.raw_data),
            json_to_python(py, &call.payload)?,
            context,
        ))?;
        let (outcome, http_status, message_json, message_text): (
            String,
            u16,
            String,
            Bound<'_, PyString>,
        ) = answer.extract()?;
        // A message may hold lone surrogates (`chr(0xd800)`): its JSON escapes them, as
        // the module's does; the logged text gets U+FFFD instead of failing the call.
        let message_text = match message_text.to_str() {
            Ok(text) => text.to_string(),
            Err(_) => lossy(&message_text)?,
        };
        Ok((outcome, http_status, message_json, message_text))
    };
    match attempt() {
        Ok((outcome, http_status, message_json, message_text)) => {
            let outcome = match outcome.as_str() {
                "ok" => Outcome::Ok,
                "auth_failed" => Outcome::AuthFailed,
                "code_failed" => Outcome::CodeFailed,
                other => {
                    return Err(EngineError::Sandbox(format!("unknown outcome {other:?}")));
                }
            };
            Ok(SnippetVerdict {
                outcome,
                http_status,
                message_json,
                message_text,
                duration: started.elapsed(),
            })
        }
        Err(error)
            if error
                .matches(py, sandbox.timeout_exception.bind(py))
                .unwrap_or(false) =>
        {
            // The timeout surfaced outside the runner's own handling.
            let text = format!(
                "Webhook code execution error: execution timed out after {} s",
                shared.settings.timeout.as_secs_f64()
            );
            Ok(SnippetVerdict {
                outcome: Outcome::CodeFailed,
                http_status: 500,
                message_json: serde_json::to_string(&text).unwrap_or_default(),
                message_text: text,
                duration: started.elapsed(),
            })
        }
        Err(error) => Err(EngineError::Sandbox(describe(py, &error))),
    }
}

/// Handed to the runner with each call: it marks the snippet's start and end and tells
/// blocking helpers (sleep, HTTP) how much time is left.
#[pyclass(frozen)]
struct SnippetGuard {
    slot: Arc<Slot>,
    epoch: Instant,
    limit: Duration,
}

#[pymethods]
impl SnippetGuard {
    fn enter(&self, _kind: &str) {
        let deadline = self.epoch.elapsed() + self.limit;
        self.slot
            .deadline
            .store(deadline.as_nanos().max(1) as u64, Ordering::Relaxed);
        self.slot.last_injection.store(0, Ordering::Relaxed);
    }

    fn leave(&self) {
        self.slot.deadline.store(0, Ordering::Relaxed);
    }

    /// Seconds left before the current snippet is interrupted (infinite outside one).
    fn remaining(&self) -> f64 {
        match self.slot.deadline.load(Ordering::Relaxed) {
            0 => f64::INFINITY,
            deadline => {
                let now = self.epoch.elapsed().as_nanos() as u64;
                deadline.saturating_sub(now) as f64 / 1e9
            }
        }
    }
}

/// The text with each lone surrogate replaced by U+FFFD.
fn lossy(text: &Bound<'_, PyString>) -> PyResult<String> {
    let units: Vec<u8> = text
        .call_method1("encode", ("utf-16-le", "surrogatepass"))?
        .extract()?;
    let units: Vec<u16> = units
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .collect();
    Ok(String::from_utf16_lossy(&units))
}

fn watchdog(shared: &Arc<Shared>) {
    while !shared.shutdown.load(Ordering::Relaxed) {
        thread::sleep(WATCHDOG_TICK);
        let now = shared.epoch.elapsed().as_nanos() as u64;
        let slots: Vec<Arc<Slot>> = shared
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let overdue: Vec<&Arc<Slot>> = slots.iter().filter(|s| s.is_overdue(now)).collect();
        if overdue.is_empty() {
            continue;
        }
        let stuck_after = shared.settings.stuck_after.as_nanos() as u64;
        Python::attach(|py| {
            let exception = shared.sandbox.timeout_exception.bind(py);
            let now = shared.epoch.elapsed().as_nanos() as u64;
            for slot in overdue {
                // Re-read under the GIL: the snippet may have finished meanwhile.
                if !slot.is_overdue(now) {
                    continue;
                }
                unsafe {
                    pyo3::ffi::PyThreadState_SetAsyncExc(
                        slot.python_thread.load(Ordering::Relaxed) as c_long,
                        exception.as_ptr(),
                    );
                }
                slot.last_injection.store(now, Ordering::Relaxed);
                let deadline = slot.deadline.load(Ordering::Relaxed);
                if now.saturating_sub(deadline) > stuck_after
                    && !slot.stuck.swap(true, Ordering::Relaxed)
                {
                    shared.stuck_threads.fetch_add(1, Ordering::Relaxed);
                    log::error!(
                        "a snippet is stuck in a call that cannot be interrupted (a blocking C \
                         call); starting a replacement snippet thread"
                    );
                    if let Err(e) = spawn_worker(shared) {
                        log::error!("cannot start a replacement snippet thread: {e}");
                    }
                }
            }
        });
    }
}

impl Slot {
    fn is_overdue(&self, now: u64) -> bool {
        let deadline = self.deadline.load(Ordering::Relaxed);
        if deadline == 0 || now < deadline {
            return false;
        }
        let last = self.last_injection.load(Ordering::Relaxed);
        last == 0 || now.saturating_sub(last) >= REINJECT_EVERY.as_nanos() as u64
    }
}
