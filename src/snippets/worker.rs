//! A snippet worker: the towerhook binary started by the server with the hidden `worker`
//! subcommand, one embedded interpreter, talking to the server over the socket it inherits
//! as file descriptor 3; its deadline slots are file descriptor 4.
//!
//! Before its interpreter starts, the worker takes its limits (memory, open files, CPU time,
//! no core dumps), leaves root for an unprivileged user, forbids itself new privileges and
//! asks to be killed with the server. It ignores SIGTERM and SIGINT: a service manager
//! signals the whole group at once, and the server, which drains calls, ends its workers
//! itself. It holds no Odoo credential: Odoo calls of snippets go to the server.

#![allow(unsafe_code)] // inherited descriptors, signal dispositions, dladdr.

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::resource::{Resource, setrlimit};
use nix::sys::signal::{SigHandler, Signal, signal};

use super::protocol::{
    self, CallFrame, FromWorker, Kind, OdooAnswer, OdooAsk, SnippetId, SnippetRef, ToWorker,
    WorkerConfig, WorkerLimits,
};
use super::shm::Slots;
use crate::snippets::python::{
    CallJob, Engine, EngineSettings, InterpreterSettings, LoadedSnippet, OdooGate, OdooRequest,
};

pub const SOCKET_FD: RawFd = 3;
pub const SLOTS_FD: RawFd = 4;

/// Exit status of a worker that could not start (the server logs its stderr).
const CANNOT_START: u8 = 70;

/// `towerhook worker`: runs until the server closes the socket.
pub fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("towerhook worker: {error}");
            ExitCode::from(CANNOT_START)
        }
    }
}

fn run() -> Result<(), String> {
    let parent = nix::unistd::getppid();
    // SAFETY: file descriptors 3 and 4 were set up by the server for this process (see
    // `supervisor::spawn`) and nothing else in it owns them.
    let (socket, slots) = unsafe {
        (
            UnixStream::from(OwnedFd::from_raw_fd(SOCKET_FD)),
            OwnedFd::from_raw_fd(SLOTS_FD),
        )
    };
    let mut reader = BufReader::with_capacity(64 * 1024, socket.try_clone().map_err(text)?);
    let mut body = Vec::new();
    let config: WorkerConfig = match protocol::read_frame(&mut reader, &mut body).map_err(text)? {
        Some(()) => match protocol::decode(&body).map_err(text)? {
            ToWorker::Start(config) => config,
            _ => return Err("the first frame is not Start".into()),
        },
        None => return Ok(()),
    };
    confine(&config.limits, parent)?;
    let slots = Arc::new(Slots::open(slots, config.threads).map_err(text)?);

    let sandbox = crate::snippets::python::sandbox(&InterpreterSettings {
        packages_dir: config.packages_dir.clone().into(),
        max_message_chars: config.max_message_chars,
        recursion_limit: config.recursion_limit,
        timeout_secs: config.timeout_secs,
        outbound_proxy: config.outbound_proxy.clone(),
        outbound_timeout_secs: config.outbound_timeout_secs,
        max_response_bytes: config.max_response_bytes,
    })?;
    let writer = Writer(Arc::new(Mutex::new(socket)));
    let gate = Arc::new(RemoteOdoo {
        writer: writer.clone(),
        waiting: Mutex::new(HashMap::new()),
        next: AtomicU64::new(1),
    });
    let engine = Engine::start(
        sandbox,
        EngineSettings {
            threads: config.threads.max(1),
            timeout: Duration::from_secs_f64(config.timeout_secs),
            max_message_chars: config.max_message_chars,
            odoo_timeout: Duration::from_secs_f64(config.odoo_timeout_secs),
            odoo: config.odoo.then(|| Arc::clone(&gate) as Arc<dyn OdooGate>),
        },
        Arc::clone(&slots),
    )
    .map_err(text)?;
    writer.send(&FromWorker::Ready {
        python: sandbox.version.clone(),
    })?;

    let cpu_limit = config.limits.cpu_secs_per_call;
    let mut snippets: HashMap<SnippetId, Arc<LoadedSnippet>> = HashMap::new();
    while protocol::read_frame(&mut reader, &mut body)
        .map_err(text)?
        .is_some()
    {
        match protocol::decode::<ToWorker>(&body).map_err(text)? {
            ToWorker::Call(call) => {
                let job = call.job;
                let call = match load(&mut snippets, call) {
                    Ok(call) => call,
                    Err(error) => {
                        writer.send(&FromWorker::Done {
                            job,
                            verdict: Err(error),
                        })?;
                        continue;
                    }
                };
                if cpu_limit > 0 {
                    allow_cpu_seconds(cpu_limit);
                }
                let writer = writer.clone();
                engine.submit(
                    call,
                    Box::new(move |verdict| {
                        // A failed write means the server is gone: the reader ends us.
                        let _ = writer.send(&FromWorker::Done { job, verdict });
                    }),
                );
            }
            ToWorker::Answer { request, answer } => gate.answered(request, answer),
            ToWorker::Release { jobs } => {
                let jobs = engine.release(&jobs);
                writer.send(&FromWorker::Released { jobs })?;
            }
            ToWorker::Check { request, snippet } => {
                let loaded = LoadedSnippet::new(snippet.kind, snippet.code, snippet.secrets);
                let problem = match crate::snippets::python::snippet_problem(sandbox, &loaded) {
                    Ok(problem) => problem,
                    Err(error) => Some(error),
                };
                writer.send(&FromWorker::Checked { request, problem })?;
            }
            ToWorker::Start(_) => return Err("a second Start frame".into()),
        }
    }
    Ok(())
}

/// The call with its snippets, compiled once per worker and snippet version.
fn load(
    snippets: &mut HashMap<SnippetId, Arc<LoadedSnippet>>,
    call: CallFrame,
) -> Result<CallJob, String> {
    let mut get = |reference: SnippetRef| -> Result<Arc<LoadedSnippet>, String> {
        if let Some(source) = reference.source {
            let loaded = LoadedSnippet::new(source.kind, source.code, source.secrets);
            snippets.insert(reference.id, Arc::new(loaded));
        }
        snippets
            .get(&reference.id)
            .cloned()
            .ok_or_else(|| format!("snippet {:?} was never sent", reference.id))
    };
    Ok(CallJob {
        job: call.job,
        authenticator: get(call.authenticator)?,
        webhook: get(call.webhook)?,
        headers: call.headers,
        raw_data: call.raw_data,
        payload: call.payload,
        context: call.context,
    })
}

/// The socket's writing side, shared by the snippet threads.
#[derive(Clone)]
struct Writer(Arc<Mutex<UnixStream>>);

impl Writer {
    fn send(&self, message: &FromWorker) -> Result<(), String> {
        let frame = protocol::encode(message);
        let mut socket = self.0.lock().unwrap_or_else(|e| e.into_inner());
        socket.write_all(&frame).map_err(text)
    }
}

/// Odoo calls of snippets, made by the server.
struct RemoteOdoo {
    writer: Writer,
    waiting: Mutex<HashMap<u64, SyncSender<OdooAnswer>>>,
    next: AtomicU64,
}

impl RemoteOdoo {
    fn ask(&self, job: u64, ask: OdooAsk, limit: Duration) -> Option<OdooAnswer> {
        let request = self.next.fetch_add(1, Ordering::Relaxed);
        let (answer, answered) = sync_channel(1);
        self.lock().insert(request, answer);
        if self
            .writer
            .send(&FromWorker::Odoo { request, job, ask })
            .is_err()
        {
            self.lock().remove(&request);
            return None;
        }
        let answer = answered.recv_timeout(limit).ok();
        self.lock().remove(&request);
        answer
    }

    fn answered(&self, request: u64, answer: OdooAnswer) {
        if let Some(waiting) = self.lock().remove(&request) {
            let _ = waiting.send(answer);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, SyncSender<OdooAnswer>>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn unreachable(limit: Duration) -> (String, String) {
    (
        "towerhook.Unreachable".into(),
        format!("Odoo did not answer within {:.1} s", limit.as_secs_f64()),
    )
}

impl OdooGate for RemoteOdoo {
    fn execute(
        &self,
        job: u64,
        kind: Kind,
        request: OdooRequest,
        limit: Duration,
    ) -> Result<serde_json::Value, (String, String)> {
        let ask = OdooAsk::Execute {
            kind,
            model: request.model,
            method: request.method,
            ids: request.ids,
            args: request.args.to_string(),
            kwargs: request.kwargs.to_string(),
        };
        match self.ask(job, ask, limit) {
            Some(OdooAnswer::Value(json)) => serde_json::from_str(&json)
                .map_err(|e| ("builtins.ValueError".to_string(), e.to_string())),
            Some(OdooAnswer::Error { name, message }) => Err((name, message)),
            Some(OdooAnswer::User(..)) | None => Err(unreachable(limit)),
        }
    }

    fn user(&self, job: u64, kind: Kind, limit: Duration) -> Result<(i64, String), String> {
        match self.ask(job, OdooAsk::User { kind }, limit) {
            Some(OdooAnswer::User(uid, login)) => Ok((uid, login)),
            Some(OdooAnswer::Error { message, .. }) => Err(message),
            Some(OdooAnswer::Value(_)) | None => Err(unreachable(limit).1),
        }
    }
}

/// Limits, privileges and signals, while the process is still single-threaded.
fn confine(limits: &WorkerLimits, parent: nix::unistd::Pid) -> Result<(), String> {
    let limit = |resource, value: u64, what: &str| {
        setrlimit(resource, value, value).map_err(|e| format!("cannot limit {what}: {e}"))
    };
    limit(Resource::RLIMIT_CORE, 0, "core dumps")?;
    if limits.open_files > 0 {
        limit(Resource::RLIMIT_NOFILE, limits.open_files, "open files")?;
    }
    if limits.memory_mb > 0 {
        limit(
            Resource::RLIMIT_DATA,
            limits.memory_mb * 1024 * 1024,
            "memory",
        )?;
    }
    if nix::unistd::geteuid().is_root() {
        let name = limits.user.as_deref().unwrap_or("nobody");
        let user = nix::unistd::User::from_name(name)
            .map_err(text)?
            .ok_or_else(|| {
                format!("worker_user {name:?} does not exist: create it or set another")
            })?;
        nix::unistd::setgroups(&[]).map_err(|e| format!("cannot drop groups: {e}"))?;
        nix::unistd::setgid(user.gid).map_err(|e| format!("cannot become {name}: {e}"))?;
        nix::unistd::setuid(user.uid).map_err(|e| format!("cannot become {name}: {e}"))?;
        if let Some(home) = python_library_dir()
            && std::fs::read_dir(&home).is_err()
        {
            return Err(format!(
                "worker_user {name:?} cannot read the Python installation at {}: make its \
                 directories readable by that user (scripts/python-env.sh does so for a \
                 pyenv under /root), or set worker_user to a user who can read it",
                home.display()
            ));
        }
    }
    nix::sys::prctl::set_no_new_privs().map_err(|e| format!("no_new_privs: {e}"))?;
    // After the identity change, which clears it.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(|e| format!("pdeathsig: {e}"))?;
    if nix::unistd::getppid() != parent {
        return Err("the server is gone".into());
    }
    // SAFETY: ignoring a signal installs no handler code; nothing else handles these.
    unsafe {
        signal(Signal::SIGTERM, SigHandler::SigIgn).map_err(text)?;
        signal(Signal::SIGINT, SigHandler::SigIgn).map_err(text)?;
    }
    // Odoo sets TZ=UTC for its whole process: naive times are UTC in the module.
    // SAFETY: no other thread runs yet in this process.
    unsafe { std::env::set_var("TZ", "UTC") };
    Ok(())
}

/// The directory of the libpython this process loaded (its standard library is below it).
fn python_library_dir() -> Option<std::path::PathBuf> {
    use std::ffi::CStr;
    let mut info = std::mem::MaybeUninit::<nix::libc::Dl_info>::zeroed();
    // SAFETY: dladdr only reads the loader's tables and fills `info`; the address is a
    // function of libpython, which is mapped for the life of the process.
    let found = unsafe {
        nix::libc::dladdr(
            pyo3::ffi::Py_IsInitialized as *const nix::libc::c_void,
            info.as_mut_ptr(),
        )
    };
    if found == 0 {
        return None;
    }
    // SAFETY: dladdr succeeded, so `info` is filled and `dli_fname` is a C string owned by
    // the loader.
    let file = unsafe { CStr::from_ptr(info.assume_init().dli_fname) };
    let file = std::path::PathBuf::from(file.to_str().ok()?);
    file.parent().map(std::path::Path::to_path_buf)
}

/// Moves the CPU limit on: this call may use `seconds` more, as Odoo's workers do per
/// request. Passing it kills the worker with SIGXCPU.
fn allow_cpu_seconds(seconds: u64) {
    let used = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
        .map(|usage| (usage.user_time().tv_sec() + usage.system_time().tv_sec()) as u64)
        .unwrap_or(0);
    let _ = setrlimit(
        Resource::RLIMIT_CPU,
        used + seconds,
        nix::sys::resource::RLIM_INFINITY,
    );
}

fn text(error: impl std::fmt::Display) -> String {
    error.to_string()
}
