//! The pool's own thread: starts workers, hands them calls, reads their answers, enforces
//! deadlines and replaces workers that die, overrun or have served enough calls.
//!
//! Everything runs as tasks of one current-thread runtime on the thread that started the
//! workers: a worker asks the kernel to kill it when that thread ends (PR_SET_PDEATHSIG),
//! so it must live as long as the pool. State is owned by that thread alone.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::os::fd::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{LocalSet, spawn_local};

use super::protocol::{
    self, CallFrameRef, FromWorker, Kind, OdooAnswer, OdooAsk, SnippetId, SnippetRef,
    SnippetSource, ToWorker, ToWorkerCall, Verdict,
};
use super::shm::{Slots, monotonic_nanos};
use super::{CallWork, Command, PoolError, PoolSettings, PoolStatus};
use crate::definitions::Snippet;
use crate::odoo::{CallsAs, SnippetCalls, call_from};

/// How often deadlines are looked at.
const WATCHDOG_TICK: Duration = Duration::from_millis(25);
/// A snippet past its deadline gets this long to end by itself (the worker's own watchdog
/// interrupts Python code) before its worker is killed.
const GRACE: Duration = Duration::from_secs(1);
/// Waits between failed worker starts, doubling up to the last.
const RESTART_DELAYS: [Duration; 6] = [
    Duration::ZERO,
    Duration::from_millis(100),
    Duration::from_millis(500),
    Duration::from_secs(2),
    Duration::from_secs(5),
    Duration::from_secs(10),
];
/// A worker whose call has run this long is held (waiting on HTTP or Odoo, or busy):
/// calls waiting while every worker is held get another worker.
const GROW_WHEN_HELD_FOR: Duration = Duration::from_millis(50);
/// An extra worker (beyond `workers`) ends after this long without a call.
const EXTRA_IDLE: Duration = Duration::from_secs(30);
/// How long a worker that was told to end may take before it is killed.
const EXIT_WAIT: Duration = Duration::from_secs(2);
/// Calls a worker may hold beyond its free snippet threads: under load the next calls are
/// already in its socket when it finishes one, so a busy worker never sleeps between
/// calls and the server reads answers in batches.
const PREFETCH: usize = 4;
/// Only a worker whose running calls all started this recently gets calls ahead.
const PREFETCH_WHILE_RUNNING_LESS_THAN: Duration = Duration::from_millis(2);
/// Calls waiting in a worker behind one running this long are taken back and given to
/// another worker: a slow (or hostile, killed only at its time limit) call holds up no
/// other.
const RELEASE_AFTER: Duration = Duration::from_millis(15);

type CallReply = oneshot::Sender<Result<Verdict, PoolError>>;
type CheckReply = oneshot::Sender<Result<Option<String>, PoolError>>;

pub(super) fn start(
    settings: PoolSettings,
    odoo: Option<Arc<SnippetCalls>>,
    status: Arc<PoolStatus>,
) -> std::io::Result<mpsc::UnboundedSender<Command>> {
    let (commands, inbox) = mpsc::unbounded_channel();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("towerhook-pool".into())
        .spawn(move || {
            let local = LocalSet::new();
            local.block_on(&runtime, supervise(settings, odoo, status, inbox));
        })?;
    Ok(commands)
}

enum Queued {
    Call(CallWork, CallReply),
    Check(SnippetSource, CheckReply),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Starting,
    Ready,
    /// Serves its last calls, then is told to end.
    Retiring,
}

/// Why the supervisor killed a worker.
#[derive(Debug, Clone, Copy)]
enum Doom {
    /// This call ran past its time limit.
    Overran { job: u64, kind: Kind },
    /// The pool is stopping.
    Shutdown,
}

struct InFlight {
    /// Kept until the call ends: a call that never started may go to another worker.
    work: CallWork,
    reply: CallReply,
    dispatched: Instant,
    /// Asked back from the worker (`Release`), answer pending.
    releasing: bool,
}

struct Worker {
    pid: u32,
    /// Frames to write; `None` once the worker was told to end.
    outbox: Option<mpsc::UnboundedSender<Vec<u8>>>,
    slots: Slots,
    phase: Phase,
    in_flight: HashMap<u64, InFlight>,
    checks: HashMap<u64, CheckReply>,
    /// Snippets this worker has the source of.
    known: HashSet<SnippetId>,
    calls: u64,
    /// Served `worker_max_calls`: it keeps serving until its successor is ready, so that
    /// recycling never leaves the pool a worker short.
    awaiting_successor: bool,
    /// Since when it has had no call (extra workers end after `EXTRA_IDLE`).
    idle_since: Option<Instant>,
    doomed: Option<Doom>,
    /// The last line it wrote to stderr (why it could not start, usually).
    last_words: Rc<RefCell<Option<String>>>,
}

impl Worker {
    fn send(&self, message: &ToWorker) {
        if let Some(outbox) = &self.outbox {
            let _ = outbox.send(protocol::encode(message));
        }
    }

    fn kill(&mut self, doom: Doom) {
        if self.doomed.is_none() {
            self.doomed = Some(doom);
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }

    /// Whether every thread that runs a call started it less than `limit` ago.
    fn running_less_than(&self, limit: Duration) -> bool {
        let now = monotonic_nanos();
        self.slots.iter().all(|slot| {
            slot.job.load(Ordering::Acquire) == 0
                || now.saturating_sub(slot.started.load(Ordering::Acquire))
                    < limit.as_nanos() as u64
        })
    }

    /// Calls given to this worker that none of its threads has taken.
    fn waiting_jobs(&self) -> Vec<u64> {
        let running: Vec<u64> = self
            .slots
            .iter()
            .map(|slot| slot.job.load(Ordering::Acquire))
            .collect();
        self.in_flight
            .iter()
            .filter(|(job, flight)| !flight.releasing && !running.contains(job))
            .map(|(&job, _)| job)
            .collect()
    }

    /// The kind of snippet `job` runs now, if one of its threads has taken the job.
    fn stage_of(&self, job: u64) -> Option<Kind> {
        self.slots
            .iter()
            .find(|slot| slot.job.load(Ordering::Acquire) == job)
            .map(|slot| match slot.kind.load(Ordering::Acquire) {
                1 => Kind::Authenticator,
                _ => Kind::Webhook,
            })
    }
}

struct State {
    settings: PoolSettings,
    odoo: Option<Arc<SnippetCalls>>,
    status: Arc<PoolStatus>,
    workers: BTreeMap<u64, Worker>,
    queue: VecDeque<Queued>,
    next_worker: u64,
    next_job: u64,
    /// Consecutive workers that ended before they were ready.
    failed_starts: usize,
    restart_pending: bool,
    stopping: bool,
}

type Shared = Rc<RefCell<State>>;

async fn supervise(
    settings: PoolSettings,
    odoo: Option<Arc<SnippetCalls>>,
    status: Arc<PoolStatus>,
    mut inbox: mpsc::UnboundedReceiver<Command>,
) {
    let state: Shared = Rc::new(RefCell::new(State {
        settings,
        odoo,
        status,
        workers: BTreeMap::new(),
        queue: VecDeque::new(),
        next_worker: 1,
        next_job: 1,
        failed_starts: 0,
        restart_pending: false,
        stopping: false,
    }));
    ensure_workers(&state);
    spawn_local(watchdog(Rc::clone(&state)));
    while let Some(command) = inbox.recv().await {
        match command {
            Command::Call(work, reply) => {
                state
                    .borrow_mut()
                    .queue
                    .push_back(Queued::Call(work, reply));
                dispatch_and_grow(&state);
            }
            Command::Check(source, reply) => {
                state
                    .borrow_mut()
                    .queue
                    .push_back(Queued::Check(source, reply));
                dispatch_and_grow(&state);
            }
            Command::Shutdown(done) => {
                stop(&state).await;
                let _ = done.send(());
                return;
            }
        }
    }
    stop(&state).await;
}

/// Starts workers until `settings.workers` are starting or ready.
fn ensure_workers(state: &Shared) {
    let mut current = state.borrow_mut();
    if current.stopping || current.restart_pending {
        return;
    }
    let delay = RESTART_DELAYS[current.failed_starts.min(RESTART_DELAYS.len() - 1)];
    if !delay.is_zero() {
        current.restart_pending = true;
        let state = Rc::clone(state);
        spawn_local(async move {
            tokio::time::sleep(delay).await;
            state.borrow_mut().restart_pending = false;
            start_missing(&state);
        });
        return;
    }
    drop(current);
    start_missing(state);
}

fn start_missing(state: &Shared) {
    loop {
        let missing = {
            let current = state.borrow();
            let running = current
                .workers
                .values()
                .filter(|w| w.phase != Phase::Retiring && !w.awaiting_successor)
                .count();
            !current.stopping && running < current.settings.workers
        };
        if !missing {
            return;
        }
        if let Err(error) = spawn(state) {
            let mut current = state.borrow_mut();
            tracing::error!("cannot start a snippet worker: {error}");
            *current
                .status
                .start_problem
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(error.to_string());
            current.failed_starts += 1;
            drop(current);
            ensure_workers(state);
            return;
        }
    }
}

#[allow(unsafe_code)] // pre_exec: the child's descriptors between fork and exec.
fn spawn(state: &Shared) -> std::io::Result<()> {
    let (server_end, worker_end) = std::os::unix::net::UnixStream::pair()?;
    let threads = state.borrow().settings.config.threads.max(1);
    let slots = Slots::create(threads)?;
    let program = state.borrow().settings.program.clone();
    let mut command = tokio::process::Command::new(&program);
    command
        .arg("worker")
        // Nothing of the server's environment (Odoo keys, secrets) reaches a worker.
        .env_clear()
        .env("TZ", "UTC")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let (socket_fd, slots_fd) = (worker_end.as_raw_fd(), slots.file().as_raw_fd());
    // SAFETY: runs in the child between fork and exec; fcntl and dup2 are
    // async-signal-safe and touch only the child's descriptor table.
    unsafe {
        command.pre_exec(move || {
            use nix::libc;
            // Out of the way first, so that neither lands on the other's target.
            let socket = libc::fcntl(socket_fd, libc::F_DUPFD, 10);
            let slots = libc::fcntl(slots_fd, libc::F_DUPFD, 10);
            if socket < 0
                || slots < 0
                || libc::dup2(socket, super::worker::SOCKET_FD) < 0
                || libc::dup2(slots, super::worker::SLOTS_FD) < 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|error| {
        std::io::Error::new(
            error.kind(),
            format!("cannot run {}: {error}", program.display()),
        )
    })?;
    drop(worker_end);
    server_end.set_nonblocking(true)?;
    let (reader, writer) = tokio::net::UnixStream::from_std(server_end)?.into_split();
    let pid = child.id().unwrap_or_default();
    let (outbox, frames) = mpsc::unbounded_channel();
    let last_words = Rc::new(RefCell::new(None));
    let id = {
        let mut current = state.borrow_mut();
        let id = current.next_worker;
        current.next_worker += 1;
        let worker = Worker {
            pid,
            outbox: Some(outbox),
            slots,
            phase: Phase::Starting,
            in_flight: HashMap::new(),
            checks: HashMap::new(),
            known: HashSet::new(),
            calls: 0,
            awaiting_successor: false,
            idle_since: Some(Instant::now()),
            doomed: None,
            last_words: Rc::clone(&last_words),
        };
        worker.send(&ToWorker::Start(current.settings.config.clone()));
        current.workers.insert(id, worker);
        current
            .status
            .pids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(pid);
        id
    };
    spawn_local(write_frames(writer, frames));
    if let Some(stderr) = child.stderr.take() {
        spawn_local(relay_stderr(stderr, pid, last_words));
    }
    let reading = spawn_local(read_frames(Rc::clone(state), id, reader));
    let state = Rc::clone(state);
    spawn_local(async move {
        let exit = child.wait().await;
        // Answers the worker sent before it ended still count.
        let _ = tokio::time::timeout(Duration::from_secs(1), reading).await;
        ended(&state, id, exit.ok());
    });
    Ok(())
}

/// Writes queued frames, several at a time when they pile up.
async fn write_frames(mut writer: OwnedWriteHalf, mut frames: mpsc::UnboundedReceiver<Vec<u8>>) {
    while let Some(mut batch) = frames.recv().await {
        while let Ok(more) = frames.try_recv() {
            batch.extend_from_slice(&more);
        }
        if writer.write_all(&batch).await.is_err() {
            return;
        }
    }
    // Closing the socket tells the worker to end.
    let _ = writer.shutdown().await;
}

async fn relay_stderr(
    stderr: tokio::process::ChildStderr,
    pid: u32,
    last_words: Rc<RefCell<Option<String>>>,
) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::warn!(target: "towerhook::worker", "worker {pid}: {line}");
        *last_words.borrow_mut() = Some(line);
    }
}

async fn read_frames(state: Shared, id: u64, reader: OwnedReadHalf) {
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let mut body = Vec::new();
    loop {
        let mut length = [0u8; 4];
        if reader.read_exact(&mut length).await.is_err() {
            return;
        }
        let length = u32::from_le_bytes(length) as usize;
        if length > protocol::MAX_FRAME {
            tracing::error!("snippet worker sent a frame of {length} bytes: ending it");
            if let Some(worker) = state.borrow_mut().workers.get_mut(&id) {
                worker.kill(Doom::Shutdown);
            }
            return;
        }
        body.resize(length, 0);
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        match protocol::decode::<FromWorker>(&body) {
            Ok(message) => {
                if received(&mut state.borrow_mut(), id, message) {
                    ensure_workers(&state);
                }
                dispatch_and_grow(&state);
            }
            Err(error) => {
                tracing::error!("snippet worker sent an unreadable frame ({error}): ending it");
                if let Some(worker) = state.borrow_mut().workers.get_mut(&id) {
                    worker.kill(Doom::Shutdown);
                }
                return;
            }
        }
    }
}

/// Handles one message of worker `id`; whether a worker must be started to replace it.
fn received(current: &mut State, id: u64, message: FromWorker) -> bool {
    let Some(worker) = current.workers.get_mut(&id) else {
        return false;
    };
    match message {
        FromWorker::Ready { python } => {
            worker.phase = Phase::Ready;
            current.failed_starts = 0;
            // A worker that was waiting for its successor retires now.
            if let Some(old) = current
                .workers
                .values_mut()
                .find(|w| w.awaiting_successor && w.phase == Phase::Ready)
            {
                old.awaiting_successor = false;
                old.phase = Phase::Retiring;
                current.status.ready.fetch_sub(1, Ordering::AcqRel);
                current.status.count_restart("recycled");
                if old.in_flight.is_empty() {
                    // Closing its socket ends it once it read everything.
                    old.outbox = None;
                }
            }
            current.status.ready.fetch_add(1, Ordering::AcqRel);
            *current
                .status
                .python
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(python);
            *current
                .status
                .start_problem
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = None;
        }
        FromWorker::Done { job, verdict } => {
            let Some(flight) = worker.in_flight.remove(&job) else {
                return false;
            };
            current.status.busy.fetch_sub(1, Ordering::AcqRel);
            worker.calls += 1;
            let timed_out = verdict.as_ref().is_ok_and(|v| v.timed_out);
            let _ = flight.reply.send(verdict.map_err(PoolError::Worker));
            let mut replace = false;
            if worker.phase == Phase::Ready {
                if timed_out {
                    // Its interpreter may hold what the interrupted code left: out at once.
                    worker.phase = Phase::Retiring;
                    current.status.ready.fetch_sub(1, Ordering::AcqRel);
                    current.status.count_restart("timeout");
                    replace = true;
                } else if worker.calls >= current.settings.max_calls && !worker.awaiting_successor {
                    // Retired when the successor is ready (`Ready` above).
                    worker.awaiting_successor = true;
                    replace = true;
                }
            }
            if worker.in_flight.is_empty() {
                worker.idle_since = Some(Instant::now());
                if worker.phase == Phase::Retiring {
                    // Closing its socket ends it once it read everything.
                    worker.outbox = None;
                }
            }
            return replace;
        }
        FromWorker::Released { jobs } => {
            for job in jobs.into_iter().rev() {
                if let Some(flight) = worker.in_flight.remove(&job) {
                    current.status.busy.fetch_sub(1, Ordering::AcqRel);
                    current.status.queued.fetch_add(1, Ordering::AcqRel);
                    current
                        .queue
                        .push_front(Queued::Call(flight.work, flight.reply));
                }
            }
            // Asked back but already started: they run here after all.
            for flight in worker.in_flight.values_mut() {
                flight.releasing = false;
            }
        }
        FromWorker::Checked { request, problem } => {
            if let Some(reply) = worker.checks.remove(&request) {
                let _ = reply.send(Ok(problem));
            }
        }
        FromWorker::Odoo { request, job, ask } => {
            let Some(outbox) = worker.outbox.clone() else {
                return false;
            };
            let call = worker
                .in_flight
                .get(&job)
                .map(|flight| (flight.work.webhook.user_id, flight.work.span.clone()));
            let (Some(odoo), Some((user_id, span))) = (current.odoo.clone(), call) else {
                let answer = OdooAnswer::Error {
                    name: "towerhook.Unreachable".into(),
                    message: "Odoo objects are not available to this call".into(),
                };
                let _ = outbox.send(protocol::encode(&ToWorker::Answer { request, answer }));
                return false;
            };
            // On the Odoo runtime (odoo/runtime.rs); the answer goes straight to the worker.
            odoo.runtime()
                .clone()
                .spawn(tracing::Instrument::instrument(
                    async move {
                        let answer = answer_odoo(odoo, user_id, ask).await;
                        let _ =
                            outbox.send(protocol::encode(&ToWorker::Answer { request, answer }));
                    },
                    span,
                ));
        }
    }
    false
}

/// Authenticators run with the service user's rights (the module runs them with sudo),
/// webhook code with its "Run as User"'s.
fn calls_as(kind: Kind, user_id: i64) -> CallsAs {
    match kind {
        Kind::Authenticator => CallsAs::ServiceUser,
        Kind::Webhook => CallsAs::User(user_id),
    }
}

async fn answer_odoo(odoo: Arc<SnippetCalls>, user_id: i64, ask: OdooAsk) -> OdooAnswer {
    match ask {
        OdooAsk::Execute {
            kind,
            model,
            method,
            ids,
            args,
            kwargs,
        } => {
            let parse = |text: &str| serde_json::from_str(text).unwrap_or(serde_json::Value::Null);
            let call = call_from(model, method, ids, parse(&args), parse(&kwargs));
            match odoo.execute(calls_as(kind, user_id), call).await {
                Ok(value) => OdooAnswer::Value(value.to_string()),
                Err((name, message)) => OdooAnswer::Error { name, message },
            }
        }
        OdooAsk::User { kind } => match odoo.user(calls_as(kind, user_id)).await {
            Ok((uid, login)) => OdooAnswer::User(uid, login),
            Err(message) => OdooAnswer::Error {
                name: "towerhook.RunAsUnavailable".into(),
                message,
            },
        },
    }
}

/// Dispatches, and starts one more worker (up to `max_workers`) when calls wait and every
/// worker is busy: snippets that wait on HTTP or Odoo keep their worker, so the pool grows
/// rather than letting quick calls queue behind them. Extra workers end after a while
/// without calls (`watchdog`).
fn dispatch_and_grow(state: &Shared) {
    let grow = {
        let mut current = state.borrow_mut();
        dispatch(&mut current);
        let starting = current.workers.values().any(|w| w.phase == Phase::Starting);
        let running = current
            .workers
            .values()
            .filter(|w| w.phase != Phase::Retiring)
            .count();
        // Only when every worker is held by a call that has run a while: a pool busy with
        // short calls (all CPU) gains nothing from more processes on the same cores.
        let all_held = current
            .workers
            .values()
            .filter(|w| w.phase == Phase::Ready)
            .all(|w| !w.running_less_than(GROW_WHEN_HELD_FOR));
        !current.queue.is_empty()
            && all_held
            && !starting
            && !current.stopping
            && running < current.settings.max_workers
    };
    if grow {
        if let Err(error) = spawn(state) {
            tracing::error!("cannot start an extra snippet worker: {error}");
        } else {
            state.borrow().status.count_restart("grown");
        }
    }
}

/// Hands queued work to ready workers with a free snippet thread, least busy first, or
/// one call ahead (`PREFETCH`) to a worker whose calls all started just now.
fn dispatch(state: &mut State) {
    let threads = state.settings.config.threads.max(1);
    let can_take = |worker: &Worker| {
        worker.phase == Phase::Ready
            && (worker.in_flight.len() < threads
                || (worker.in_flight.len() < threads + PREFETCH
                    && worker.running_less_than(PREFETCH_WHILE_RUNNING_LESS_THAN)
                    && !worker
                        .in_flight
                        .values()
                        .any(|flight| flight.work.background)))
    };
    while !state.queue.is_empty() {
        let Some((&id, _)) = state
            .workers
            .iter()
            .filter(|(_, w)| can_take(w))
            .min_by_key(|(_, w)| w.in_flight.len())
        else {
            return;
        };
        let worker = state.workers.get_mut(&id).expect("picked above");
        match state.queue.pop_front().expect("not empty") {
            Queued::Call(work, reply) => {
                state.status.queued.fetch_sub(1, Ordering::AcqRel);
                if reply.is_closed() {
                    continue;
                }
                state.next_job += 1;
                let job = state.next_job;
                let frame = protocol::encode(&ToWorkerCall::Call(CallFrameRef {
                    job,
                    authenticator: snippet_ref(&work.webhook.authenticator.code, &mut worker.known),
                    webhook: snippet_ref(&work.webhook.code, &mut worker.known),
                    headers: &work.headers,
                    raw_data: &work.raw_data,
                    payload: &work.payload,
                    context: &work.context,
                }));
                if let Some(outbox) = &worker.outbox {
                    let _ = outbox.send(frame);
                }
                worker.idle_since = None;
                worker.in_flight.insert(
                    job,
                    InFlight {
                        work,
                        reply,
                        dispatched: Instant::now(),
                        releasing: false,
                    },
                );
                state.status.busy.fetch_add(1, Ordering::AcqRel);
            }
            Queued::Check(snippet, reply) => {
                state.next_job += 1;
                let request = state.next_job;
                worker.send(&ToWorker::Check { request, snippet });
                worker.checks.insert(request, reply);
            }
        }
    }
}

/// The snippet's id, with its source when this worker has not seen it yet.
fn snippet_ref(snippet: &Snippet, known: &mut HashSet<SnippetId>) -> SnippetRef {
    let id = snippet.id();
    SnippetRef {
        id,
        source: known.insert(id).then(|| SnippetSource {
            kind: snippet.kind(),
            code: snippet.source().to_string(),
            secrets: snippet
                .secrets()
                .iter()
                .map(|(reference, value)| (reference.clone(), value.clone()))
                .collect(),
        }),
    }
}

/// Kills workers whose snippet ran past its deadline plus the grace, or that hold a call
/// far longer than any snippet may run.
async fn watchdog(state: Shared) {
    let mut ticker = tokio::time::interval(WATCHDOG_TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        // Calls may have waited long enough for the pool to grow.
        dispatch_and_grow(&state);
        let mut current = state.borrow_mut();
        let current = &mut *current;
        retire_idle_extras(current);
        let now = monotonic_nanos();
        let grace = GRACE.as_nanos() as u64;
        // Both snippets, the lookups of who runs them, and the grace.
        let longest = current.settings.timeout * 2 + current.settings.odoo_timeout * 2 + GRACE * 4;
        for worker in current.workers.values_mut() {
            if worker.in_flight.is_empty() || worker.doomed.is_some() {
                continue;
            }
            let overran = worker.slots.iter().find_map(|slot| {
                let deadline = slot.deadline.load(Ordering::Acquire);
                (deadline != 0 && now > deadline + grace).then(|| {
                    let job = slot.job.load(Ordering::Acquire);
                    let kind = match slot.kind.load(Ordering::Acquire) {
                        1 => Kind::Authenticator,
                        _ => Kind::Webhook,
                    };
                    (job, kind)
                })
            });
            let stuck = worker
                .in_flight
                .iter()
                .find(|(_, flight)| flight.dispatched.elapsed() > longest)
                .map(|(&job, _)| (job, worker.stage_of(job).unwrap_or(Kind::Webhook)));
            // Calls waiting behind a slow one go to another worker.
            if !worker.running_less_than(RELEASE_AFTER) {
                let waiting = worker.waiting_jobs();
                if !waiting.is_empty() {
                    for job in &waiting {
                        if let Some(flight) = worker.in_flight.get_mut(job) {
                            flight.releasing = true;
                        }
                    }
                    worker.send(&ToWorker::Release { jobs: waiting });
                }
            }
            if let Some((job, kind)) = overran.or(stuck) {
                tracing::warn!(
                    "snippet worker {} ran a {} past its time limit: killed",
                    worker.pid,
                    kind.as_str()
                );
                current
                    .status
                    .killed_for_time
                    .fetch_add(1, Ordering::Relaxed);
                worker.kill(Doom::Overran { job, kind });
            }
        }
    }
}

/// Ends one extra worker that has been idle for `EXTRA_IDLE`, while more than `workers`
/// run.
fn retire_idle_extras(state: &mut State) {
    let running = state
        .workers
        .values()
        .filter(|w| w.phase == Phase::Ready)
        .count();
    if running <= state.settings.workers {
        return;
    }
    if let Some(worker) = state.workers.values_mut().find(|w| {
        w.phase == Phase::Ready
            && w.in_flight.is_empty()
            && w.idle_since
                .is_some_and(|since| since.elapsed() > EXTRA_IDLE)
    }) {
        worker.phase = Phase::Retiring;
        worker.outbox = None;
        state.status.ready.fetch_sub(1, Ordering::AcqRel);
        state.status.count_restart("shrunk");
    }
}

/// A worker process ended: its calls fail (or, not yet started, go back to the queue),
/// and another takes its place.
fn ended(state: &Shared, id: u64, exit: Option<ExitStatus>) {
    let mut current = state.borrow_mut();
    let current_ref = &mut *current;
    let Some(mut worker) = current_ref.workers.remove(&id) else {
        return;
    };
    current_ref
        .status
        .pids
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|pid| *pid != worker.pid);
    if worker.phase == Phase::Ready {
        current_ref.status.ready.fetch_sub(1, Ordering::AcqRel);
    }
    let cause = describe_exit(exit, worker.last_words.borrow().as_deref());
    let expected = current_ref.stopping
        || worker.phase == Phase::Retiring
        || matches!(worker.doomed, Some(Doom::Shutdown));
    match worker.phase {
        Phase::Starting => {
            current_ref.failed_starts += 1;
            current_ref.status.count_restart("start_failed");
            tracing::error!("a snippet worker could not start: {cause}");
            *current_ref
                .status
                .start_problem
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(cause.clone());
        }
        _ if matches!(worker.doomed, Some(Doom::Overran { .. })) => {
            current_ref.status.count_restart("timeout");
        }
        _ if !expected => {
            current_ref.status.count_restart("died");
            tracing::error!("snippet worker {} died: {cause}", worker.pid);
        }
        _ => {}
    }
    let mut in_flight: Vec<(u64, InFlight)> =
        std::mem::take(&mut worker.in_flight).into_iter().collect();
    // Newest first: calls that never started go back to the front in their order.
    in_flight.sort_by_key(|(job, _)| std::cmp::Reverse(*job));
    for (job, flight) in in_flight {
        current_ref.status.busy.fetch_sub(1, Ordering::AcqRel);
        let stage = worker.stage_of(job);
        if stage.is_none() && !current_ref.stopping {
            // Nothing of it ran: another worker takes it.
            current_ref.status.queued.fetch_add(1, Ordering::AcqRel);
            current_ref
                .queue
                .push_front(Queued::Call(flight.work, flight.reply));
            continue;
        }
        let error = match (worker.doomed, stage) {
            (Some(Doom::Overran { job: overran, kind }), _) if overran == job => {
                PoolError::TimedOut { kind }
            }
            (Some(Doom::Overran { .. }), stage) => PoolError::WorkerDied {
                kind: stage.unwrap_or(Kind::Webhook),
                cause: "its snippet worker was killed: another call in it ran past its time \
                        limit"
                    .into(),
            },
            (_, None) => PoolError::Stopped,
            (_, Some(kind)) => PoolError::WorkerDied {
                kind,
                cause: format!("its snippet worker died: {cause}"),
            },
        };
        let _ = flight.reply.send(Err(error));
    }
    for (_, reply) in std::mem::take(&mut worker.checks) {
        let _ = reply.send(Err(PoolError::WorkerDied {
            kind: Kind::Webhook,
            cause: cause.clone(),
        }));
    }
    drop(current);
    ensure_workers(state);
    dispatch_and_grow(state);
}

/// What an operator (and the log record) should read about a worker's end.
fn describe_exit(exit: Option<ExitStatus>, last_words: Option<&str>) -> String {
    let Some(exit) = exit else {
        return "its exit status is unknown".into();
    };
    let words = last_words
        .map(|line| format!(" (it said: {line})"))
        .unwrap_or_default();
    if let Some(signal) = exit.signal() {
        let what = match nix::sys::signal::Signal::try_from(signal) {
            Ok(nix::sys::signal::Signal::SIGKILL) => {
                "killed (SIGKILL: towerhook, or the system out of memory)".to_string()
            }
            Ok(nix::sys::signal::Signal::SIGABRT) => {
                "aborted (SIGABRT: a stack overflow or a fatal error in C code)".to_string()
            }
            Ok(nix::sys::signal::Signal::SIGSEGV) => {
                "crashed (SIGSEGV: a fault in C code or a stack overflow)".to_string()
            }
            Ok(nix::sys::signal::Signal::SIGXCPU) => {
                "stopped at its CPU time limit (SIGXCPU, worker_cpu_secs)".to_string()
            }
            Ok(other) => format!("ended by {other}"),
            Err(_) => format!("ended by signal {signal}"),
        };
        return format!("{what}{words}");
    }
    match exit.code() {
        Some(0) => "it exited".into(),
        Some(code) => format!("it exited with status {code}{words}"),
        None => format!("it ended{words}"),
    }
}

/// Tells every worker to end, and kills those that do not within `EXIT_WAIT`.
async fn stop(state: &Shared) {
    let pids: Vec<u32> = {
        let mut current = state.borrow_mut();
        current.stopping = true;
        for queued in current.queue.drain(..) {
            match queued {
                Queued::Call(_, reply) => {
                    let _ = reply.send(Err(PoolError::Stopped));
                }
                Queued::Check(_, reply) => {
                    let _ = reply.send(Err(PoolError::Stopped));
                }
            }
        }
        for worker in current.workers.values_mut() {
            worker.outbox = None;
        }
        current.workers.values().map(|w| w.pid).collect()
    };
    let deadline = Instant::now() + EXIT_WAIT;
    while !state.borrow().workers.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for worker in state.borrow_mut().workers.values_mut() {
        worker.kill(Doom::Shutdown);
    }
    let deadline = Instant::now() + EXIT_WAIT;
    while !state.borrow().workers.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tracing::debug!("snippet workers {pids:?} stopped");
}
