//! The snippet threads of a worker process, fed by its socket reader, and the watchdog that
//! interrupts snippets running past their wall-clock limit.
//!
//! Inside a worker, the threads share the one GIL; a snippet waiting on I/O releases it.
//! What the watchdog cannot interrupt (a C loop holding the GIL, a blocking wait) the
//! server ends by killing the worker: every snippet publishes its deadline in memory the
//! server reads (`pool::shm`).

#![allow(unsafe_code)] // CPython's thread ids and asynchronous exceptions.

use std::os::raw::c_long;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};
use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};

use super::interpreter::{Sandbox, describe};
use super::odoo_bridge::{OdooBridge, OdooGate};
use super::snippet::LoadedSnippet;
use crate::snippets::protocol::{CallContext, Outcome, ShapedResponse, Verdict};
use crate::snippets::shm::{Slots, monotonic_nanos};

/// Stack of a snippet thread: deep recursion must end in RecursionError, not in a stack
/// overflow (which would end the worker: the server then answers the call and starts
/// another).
const THREAD_STACK_BYTES: usize = 8 * 1024 * 1024;
/// How often the watchdog looks, and how often it re-injects into a snippet that caught
/// the timeout and kept going.
const WATCHDOG_TICK: Duration = Duration::from_millis(10);
const REINJECT_EVERY: Duration = Duration::from_millis(50);

#[derive(Clone)]
pub struct EngineSettings {
    pub threads: usize,
    pub timeout: Duration,
    pub max_message_chars: usize,
    /// Longest wait for one Odoo call.
    pub odoo_timeout: Duration,
    /// Who makes the Odoo calls of snippets (`None`: no Odoo objects).
    pub odoo: Option<Arc<dyn OdooGate>>,
}

/// One call as the worker runs it.
pub struct CallJob {
    pub job: u64,
    pub authenticator: Arc<LoadedSnippet>,
    pub webhook: Arc<LoadedSnippet>,
    pub headers: Vec<(String, String)>,
    pub raw_data: Vec<u8>,
    /// JSON text, read with Python's `json.loads` as the module's werkzeug does.
    pub payload: String,
    pub context: CallContext,
}

type Reply = Box<dyn FnOnce(Result<Verdict, String>) + Send>;

struct Job {
    call: CallJob,
    reply: Reply,
}

pub struct Engine {
    shared: Arc<Shared>,
}

/// Calls given to the worker and not yet taken by a snippet thread. The server may take
/// them back (`release`) when the worker is slow to get to them.
#[derive(Default)]
struct Waiting {
    jobs: Mutex<VecDeque<Job>>,
    arrived: Condvar,
}

struct Shared {
    sandbox: &'static Sandbox,
    waiting: Waiting,
    settings: EngineSettings,
    slots: Arc<Slots>,
    /// Per thread: the Python thread id, and when the watchdog last injected.
    threads: Vec<ThreadState>,
}

#[derive(Default)]
struct ThreadState {
    python_thread: AtomicU64,
    last_injection: AtomicU64,
    /// The watchdog injected a timeout during the current call.
    timed_out: AtomicBool,
}

impl Engine {
    /// Starts `settings.threads` snippet threads (slot `i` of `slots` each) and the
    /// watchdog.
    pub fn start(
        sandbox: &'static Sandbox,
        settings: EngineSettings,
        slots: Arc<Slots>,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            sandbox,
            waiting: Waiting::default(),
            threads: (0..settings.threads)
                .map(|_| ThreadState::default())
                .collect(),
            settings,
            slots,
        });
        for index in 0..shared.settings.threads {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("snippet-{index}"))
                .stack_size(THREAD_STACK_BYTES)
                .spawn(move || snippet_thread(&shared, index))?;
        }
        let watched = Arc::clone(&shared);
        thread::Builder::new()
            .name("watchdog".into())
            .spawn(move || watchdog(&watched))?;
        Ok(Self { shared })
    }

    /// Runs the call's authenticator and, if it allows, its webhook code; `reply` gets
    /// the verdict on the snippet thread.
    pub fn submit(&self, call: CallJob, reply: Reply) {
        let waiting = &self.shared.waiting;
        waiting.lock().push_back(Job { call, reply });
        waiting.arrived.notify_one();
    }

    /// Takes back those of `jobs` no snippet thread has taken yet; their ids. Their
    /// replies are dropped unsent: the server runs them elsewhere.
    pub fn release(&self, jobs: &[u64]) -> Vec<u64> {
        let mut waiting = self.shared.waiting.lock();
        let mut released = Vec::new();
        waiting.retain(|job| {
            let keep = !jobs.contains(&job.call.job);
            if !keep {
                released.push(job.call.job);
            }
            keep
        });
        released
    }
}

impl Waiting {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Job>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next job, waiting for one.
    fn next(&self) -> Job {
        let mut jobs = self.lock();
        loop {
            if let Some(job) = jobs.pop_front() {
                return job;
            }
            jobs = self.arrived.wait(jobs).unwrap_or_else(|e| e.into_inner());
        }
    }
}

fn snippet_thread(shared: &Arc<Shared>, index: usize) {
    let slot = shared.slots.get(index);
    let state = &shared.threads[index];
    // The thread stays attached for its whole life and only releases the GIL while it
    // waits: attaching per job would create and destroy a Python thread state (and its
    // frame stack, an mmap) every call.
    Python::attach(|py| {
        // SAFETY: asks the running thread's own id, with the GIL held.
        let ident = unsafe { pyo3::ffi::PyThread_get_thread_ident() };
        state.python_thread.store(ident as u64, Ordering::Relaxed);
        let guard = match Py::new(
            py,
            SnippetGuard {
                shared: Arc::clone(shared),
                index,
            },
        ) {
            Ok(guard) => guard,
            Err(e) => {
                tracing::error!("snippet thread cannot start: {e}");
                std::process::exit(70);
            }
        };
        loop {
            let Job { call, reply } = py.detach(|| {
                let job = shared.waiting.next();
                // Taken: from now on the server counts it as started.
                slot.started.store(monotonic_nanos(), Ordering::Release);
                slot.job.store(job.call.job, Ordering::Release);
                job
            });
            let verdict = run(py, shared, &guard, &call);
            // Nothing of this job may reach the next one: no deadline, no pending timeout.
            slot.deadline.store(0, Ordering::Release);
            state.timed_out.store(false, Ordering::Relaxed);
            // SAFETY: the id is this thread's own; clearing a pending asynchronous
            // exception needs the GIL, which this thread holds.
            unsafe {
                pyo3::ffi::PyThreadState_SetAsyncExc(
                    state.python_thread.load(Ordering::Relaxed) as c_long,
                    std::ptr::null_mut(),
                );
            }
            drop(call);
            py.detach(|| reply(verdict));
            // Only once its answer is on its way: should the worker die now, the server
            // must not take the job for one that never started and run it again.
            slot.clear();
        }
    });
}

fn run(
    py: Python<'_>,
    shared: &Shared,
    guard: &Py<SnippetGuard>,
    call: &CallJob,
) -> Result<Verdict, String> {
    let sandbox = shared.sandbox;
    let started = Instant::now();
    let attempt = || -> PyResult<(String, u16, String, String, Option<ShapedResponse>)> {
        let authenticator = call.authenticator.prepared(py, sandbox)?;
        let webhook = call.webhook.prepared(py, sandbox)?;
        let context = PyDict::new(py);
        context.set_item("guard", guard.bind(py))?;
        context.set_item("timeout_seconds", shared.settings.timeout.as_secs_f64())?;
        context.set_item("max_message_chars", shared.settings.max_message_chars)?;
        // towerhook extensions, made into snippet names only for snippets that use them.
        context.set_item("url", call.context.url.as_deref())?;
        context.set_item("method", call.context.method.as_str())?;
        context.set_item("client_ip", call.context.client_ip.as_deref())?;
        context.set_item("request_id", call.context.request_id.as_str())?;
        if let Some(gate) = &shared.settings.odoo {
            let remaining = guard.bind(py).getattr("remaining")?.unbind();
            let bridge = OdooBridge::new(
                Arc::clone(gate),
                call.job,
                shared.settings.odoo_timeout,
                remaining,
            );
            context.set_item("odoo", Py::new(py, bridge)?)?;
        }
        let headers = PyDict::new(py);
        for (name, value) in &call.headers {
            headers.set_item(name, value)?;
        }
        let payload = sandbox
            .json_loads
            .bind(py)
            .call1((call.payload.as_str(),))?;
        let answer = sandbox.run_call.bind(py).call1((
            authenticator,
            webhook,
            headers,
            PyBytes::new(py, &call.raw_data),
            payload,
            context,
        ))?;
        // `(outcome, status, message_json, message_text)`, with the shaped response as a
        // fifth item when the snippet made one.
        let answer = answer.cast_into::<pyo3::types::PyTuple>()?;
        let response = if answer.len() == 5 {
            let shaped = answer.get_item(4)?;
            let shaped = shaped.cast::<pyo3::types::PyTuple>()?;
            Some(ShapedResponse {
                status: shaped.get_item(0)?.extract()?,
                headers: shaped.get_item(1)?.extract()?,
                content_type: shaped.get_item(2)?.extract()?,
                body: shaped.get_item(3)?.cast::<PyBytes>()?.as_bytes().to_vec(),
            })
        } else {
            None
        };
        let (outcome, http_status, message_json, message_text): (
            String,
            u16,
            String,
            Bound<'_, PyString>,
        ) = (
            answer.get_item(0)?.extract()?,
            answer.get_item(1)?.extract()?,
            answer.get_item(2)?.extract()?,
            answer.get_item(3)?.cast_into()?,
        );
        // A message may hold lone surrogates (`chr(0xd800)`): its JSON escapes them, as
        // the module's does; the logged text gets U+FFFD instead of failing the call.
        let message_text = match message_text.to_str() {
            Ok(text) => text.to_string(),
            Err(_) => lossy(&message_text)?,
        };
        Ok((outcome, http_status, message_json, message_text, response))
    };
    let micros = || started.elapsed().as_micros() as u64;
    match attempt() {
        Ok((outcome, http_status, message_json, message_text, response)) => {
            let outcome = match outcome.as_str() {
                "ok" => Outcome::Ok,
                "auth_failed" => Outcome::AuthFailed,
                "code_failed" => Outcome::CodeFailed,
                other => return Err(format!("unknown outcome {other:?}")),
            };
            let timed_out = shared.threads[guard.get().index]
                .timed_out
                .swap(false, Ordering::Relaxed);
            Ok(Verdict {
                outcome,
                http_status,
                message_json,
                message_text,
                micros: micros(),
                timed_out,
                response,
            })
        }
        Err(error)
            if error
                .matches(py, sandbox.timeout_exception.bind(py))
                .unwrap_or(false) =>
        {
            // The timeout surfaced outside the runner's own handling.
            shared.threads[guard.get().index]
                .timed_out
                .store(false, Ordering::Relaxed);
            let text = format!(
                "Webhook code execution error: execution timed out after {} s",
                shared.settings.timeout.as_secs_f64()
            );
            Ok(Verdict {
                outcome: Outcome::CodeFailed,
                http_status: 500,
                message_json: serde_json::to_string(&text).unwrap_or_default(),
                message_text: text,
                micros: micros(),
                timed_out: true,
                response: None,
            })
        }
        Err(error) => Err(describe(py, &error)),
    }
}

/// Handed to the runner with each call: it marks the snippet's start and end and tells
/// blocking helpers (sleep, HTTP) how much time is left.
#[pyclass(frozen)]
struct SnippetGuard {
    shared: Arc<Shared>,
    index: usize,
}

impl SnippetGuard {
    fn slot(&self) -> &crate::snippets::shm::Slot {
        self.shared.slots.get(self.index)
    }
}

#[pymethods]
impl SnippetGuard {
    fn enter(&self, kind: &str) {
        let deadline = monotonic_nanos() + self.shared.settings.timeout.as_nanos() as u64;
        let slot = self.slot();
        slot.kind.store(
            if kind == "authenticator" { 1 } else { 2 },
            Ordering::Release,
        );
        slot.deadline.store(deadline, Ordering::Release);
        self.shared.threads[self.index]
            .last_injection
            .store(0, Ordering::Relaxed);
    }

    fn leave(&self) {
        self.slot().deadline.store(0, Ordering::Release);
    }

    /// Seconds left before the current snippet is interrupted (infinite outside one).
    fn remaining(&self) -> f64 {
        match self.slot().deadline.load(Ordering::Acquire) {
            0 => f64::INFINITY,
            deadline => deadline.saturating_sub(monotonic_nanos()) as f64 / 1e9,
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

/// Injects the sandbox's timeout into snippets past their deadline, again every
/// `REINJECT_EVERY` until they end.
fn watchdog(shared: &Arc<Shared>) {
    loop {
        thread::sleep(WATCHDOG_TICK);
        let now = monotonic_nanos();
        let due = |index: usize| {
            let deadline = shared.slots.get(index).deadline.load(Ordering::Acquire);
            let last = shared.threads[index].last_injection.load(Ordering::Relaxed);
            deadline != 0
                && now >= deadline
                && (last == 0 || now.saturating_sub(last) >= REINJECT_EVERY.as_nanos() as u64)
        };
        let overdue: Vec<usize> = (0..shared.threads.len()).filter(|&i| due(i)).collect();
        if overdue.is_empty() {
            continue;
        }
        Python::attach(|py| {
            let exception = shared.sandbox.timeout_exception.bind(py);
            let now = monotonic_nanos();
            for index in overdue {
                // Re-read under the GIL: the snippet may have finished meanwhile.
                let deadline = shared.slots.get(index).deadline.load(Ordering::Acquire);
                if deadline == 0 || now < deadline {
                    continue;
                }
                let state = &shared.threads[index];
                // SAFETY: the id is a live snippet thread's (they never end before the
                // process), and the GIL is held as SetAsyncExc requires.
                unsafe {
                    pyo3::ffi::PyThreadState_SetAsyncExc(
                        state.python_thread.load(Ordering::Relaxed) as c_long,
                        exception.as_ptr(),
                    );
                }
                state.last_injection.store(now, Ordering::Relaxed);
                state.timed_out.store(true, Ordering::Relaxed);
            }
        });
    }
}
