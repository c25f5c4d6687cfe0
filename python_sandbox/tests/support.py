"""Helpers shared by the sandbox tests, and the reference time-limit guard."""

import ctypes
import threading
import time
import unittest

import towerhook_sandbox as sandbox

ALLOW_ALL = "result = {'allowed': True}"

# Settings for tests: no preloading (each configure() would pay for it), the defaults
# otherwise.
TEST_SETTINGS = {
    "max_message_chars": 65536,
    "preload_libraries": False,
    "timeout_seconds": 30,
    "outbound_timeout_seconds": 30,
    "outbound_proxy": None,
    "max_response_bytes": 1024 * 1024,
}


def configure(**overrides):
    settings = dict(TEST_SETTINGS)
    settings.update(overrides)
    sandbox.configure(settings)


def run(
    webhook="",
    authenticator=ALLOW_ALL,
    headers=None,
    raw_data=b"",
    payload=None,
    secrets=None,
    context=None,
):
    """Prepares both snippets and runs one call; returns run_call's 4-tuple."""
    auth = sandbox.prepare("authenticator", authenticator, secrets or {})
    hook = sandbox.prepare("webhook", webhook, secrets or {})
    return sandbox.run_call(
        auth,
        hook,
        headers if headers is not None else {},
        raw_data,
        payload,
        context if context is not None else {"timeout_seconds": 30},
    )


_inject = ctypes.pythonapi.PyThreadState_SetAsyncExc
_inject.argtypes = (ctypes.c_ulong, ctypes.py_object)
_inject.restype = ctypes.c_int
_clear = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)(
    ("PyThreadState_SetAsyncExc", ctypes.pythonapi)
)


def inject_timeout(thread_id):
    """What the host does: schedule SnippetTimeout in a thread (asynchronously)."""
    _inject(thread_id, sandbox.SnippetTimeout)


def clear_pending(thread_id):
    _clear(thread_id, None)


class WatchdogGuard:
    """Reference guard: the Rust host's mechanism in Python.

    ``enter`` starts a deadline ``limit`` seconds away; a watchdog thread injects
    SnippetTimeout into the snippet's thread once it has passed, and again every
    ``reinject`` seconds while the snippet keeps running (it may catch the exception).
    Injections happen only between enter and leave (a lock orders them with leave).
    """

    def __init__(self, limit, reinject=0.05, tick=0.01):
        self.limit = limit
        self.reinject = reinject
        self.tick = tick
        self.injections = 0
        self.entered = []
        self._lock = threading.Lock()
        self._deadline = None
        self._thread = None
        self._last = None
        self._stop = threading.Event()
        self._watchdog = threading.Thread(target=self._watch, daemon=True)
        self._watchdog.start()

    def enter(self, kind):
        with self._lock:
            self.entered.append(kind)
            self._thread = threading.get_ident()
            self._deadline = time.monotonic() + self.limit
            self._last = None

    def leave(self):
        with self._lock:
            self._deadline = None

    def remaining(self):
        deadline = self._deadline
        if deadline is None:
            return float("inf")
        return max(0.0, deadline - time.monotonic())

    def _watch(self):
        while not self._stop.wait(self.tick):
            with self._lock:
                if self._deadline is None:
                    continue
                now = time.monotonic()
                if now < self._deadline:
                    continue
                if self._last is not None and now - self._last < self.reinject:
                    continue
                inject_timeout(self._thread)
                self._last = now
                self.injections += 1

    def close(self):
        self._stop.set()
        self._watchdog.join()
        if self._thread is not None:
            clear_pending(self._thread)


class SandboxTestCase(unittest.TestCase):
    """Configures the sandbox with the test settings before each test."""

    def setUp(self):
        configure()

    def assertOutcome(self, answer, outcome, status, contains=None):
        got_outcome, got_status, message_json, message_text = answer
        self.assertEqual((got_outcome, got_status), (outcome, status), answer)
        self.assertIsInstance(message_json, str)
        self.assertIsInstance(message_text, str)
        if contains is not None:
            self.assertIn(contains, message_text, answer)

    def assertWebhookOk(self, answer, text=None):
        self.assertOutcome(answer, "ok", 200)
        if text is not None:
            self.assertEqual(answer[3], text, answer)

    def assertWebhookFailed(self, answer, contains=None):
        self.assertOutcome(answer, "code_failed", 500, contains)

    def assertAuthFailed(self, answer, status=403, contains=None):
        self.assertOutcome(answer, "auth_failed", status, contains)

