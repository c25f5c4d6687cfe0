"""Time limits, with the reference guard injecting SnippetTimeout as the host does."""

import threading
import time

import towerhook_sandbox as sandbox

from .support import SandboxTestCase, WatchdogGuard, clear_pending, inject_timeout, run

LIMIT = 0.3


class TimeoutTest(SandboxTestCase):
    def setUp(self):
        super().setUp()
        self.guard = WatchdogGuard(LIMIT)
        self.addCleanup(self.guard.close)
        self.context = {"guard": self.guard, "timeout_seconds": LIMIT}

    def run_limited(self, webhook="", authenticator="result = {'allowed': True}"):
        started = time.monotonic()
        answer = run(webhook=webhook, authenticator=authenticator, context=self.context)
        return answer, time.monotonic() - started

    def assertWebhookTimedOut(self, answer, elapsed):
        self.assertWebhookFailed(answer)
        self.assertEqual(
            answer[3], "Webhook code execution error: execution timed out after 0.3 s"
        )
        self.assertEqual(answer[2], '"%s"' % answer[3])
        self.assertLess(elapsed, LIMIT + 2)

    def test_busy_loop(self):
        self.assertWebhookTimedOut(*self.run_limited("while True:\n    pass"))

    def test_loop_catching_base_exception(self):
        code = (
            "while True:\n"
            "    try:\n"
            "        while True:\n"
            "            pass\n"
            "    except BaseException:\n"
            "        pass"
        )
        self.assertWebhookTimedOut(*self.run_limited(code))

    def test_loop_with_bare_except(self):
        code = (
            "while True:\n"
            "    try:\n"
            "        while True:\n"
            "            pass\n"
            "    except:\n"
            "        pass"
        )
        self.assertWebhookTimedOut(*self.run_limited(code))

    def test_loop_with_exception_handler_and_nested_try(self):
        code = (
            "n = 0\n"
            "while True:\n"
            "    try:\n"
            "        try:\n"
            "            while True:\n"
            "                n += 1\n"
            "        except Exception:\n"
            "            pass\n"
            "    except:\n"
            "        continue"
        )
        self.assertWebhookTimedOut(*self.run_limited(code))

    def test_finally_that_swallows_with_continue(self):
        code = (
            "while True:\n"
            "    try:\n"
            "        while True:\n"
            "            pass\n"
            "    finally:\n"
            "        continue"
        )
        self.assertWebhookTimedOut(*self.run_limited(code))

    def test_finally_that_swallows_with_return(self):
        code = (
            "def spin():\n"
            "    try:\n"
            "        while True:\n"
            "            pass\n"
            "    finally:\n"
            "        return 1\n"
            "while True:\n"
            "    spin()"
        )
        self.assertWebhookTimedOut(*self.run_limited(code))

    def test_loop_in_generator(self):
        code = "def g():\n    while True:\n        yield 1\nfor x in g():\n    pass"
        self.assertWebhookTimedOut(*self.run_limited(code))

    def test_sleep_is_cut_at_the_deadline(self):
        self.assertWebhookTimedOut(*self.run_limited("time.sleep(30)"))

    def test_authenticator_timeout(self):
        answer, elapsed = self.run_limited(authenticator="while True:\n    pass")
        self.assertAuthFailed(answer, 403)
        self.assertEqual(
            answer[3], "Authentication code error: execution timed out after 0.3 s"
        )
        self.assertEqual(self.guard.entered, ["authenticator"])
        self.assertLess(elapsed, LIMIT + 2)

    def test_each_snippet_gets_its_own_limit(self):
        # 0.2 s each: together longer than the limit, each within it.
        answer, _ = self.run_limited(
            webhook="time.sleep(0.2)\nresult['message'] = 'done'",
            authenticator="time.sleep(0.2)\nresult = {'allowed': True}",
        )
        self.assertWebhookOk(answer, "done")
        self.assertEqual(self.guard.entered, ["authenticator", "webhook"])

    def test_fast_snippets_are_untouched(self):
        for _ in range(3):
            answer, _ = self.run_limited("result['message'] = 'fast'")
            self.assertWebhookOk(answer, "fast")
        self.assertEqual(self.guard.injections, 0)

    def test_next_call_after_a_timeout_is_clean(self):
        self.assertWebhookTimedOut(*self.run_limited("while True:\n    pass"))
        answer, _ = self.run_limited("result['message'] = 'next'")
        self.assertWebhookOk(answer, "next")

    def test_timeout_seconds_from_settings_when_context_has_none(self):
        guard = WatchdogGuard(0.1)
        self.addCleanup(guard.close)
        answer = run(webhook="while True:\n    pass", context={"guard": guard})
        self.assertEqual(
            answer[3], "Webhook code execution error: execution timed out after 30 s"
        )


class LateGuard:
    """Injects the timeout as it leaves ``kind``: it surfaces after leave()."""

    def __init__(self, kind):
        self.kind = kind
        self.current = None

    def enter(self, kind):
        self.current = kind

    def leave(self):
        if self.current == self.kind:
            inject_timeout(threading.get_ident())
        self.current = None

    def remaining(self):
        return float("inf")


class LateTimeoutTest(SandboxTestCase):
    def tearDown(self):
        clear_pending(threading.get_ident())

    def test_late_timeout_fails_the_authenticator(self):
        answer = run(
            webhook="result['message'] = 'ran'",
            context={"guard": LateGuard("authenticator"), "timeout_seconds": 5},
        )
        self.assertAuthFailed(answer, 403)
        self.assertEqual(
            answer[3], "Authentication code error: execution timed out after 5 s"
        )

    def test_late_timeout_fails_the_webhook(self):
        answer = run(
            webhook="result['message'] = 'ran'",
            context={"guard": LateGuard("webhook"), "timeout_seconds": 2.5},
        )
        self.assertWebhookFailed(answer)
        self.assertEqual(
            answer[3], "Webhook code execution error: execution timed out after 2.5 s"
        )

    def test_late_timeout_after_a_denial(self):
        answer = run(
            authenticator="result = {'allowed': False}",
            context={"guard": LateGuard("authenticator"), "timeout_seconds": 5},
        )
        self.assertAuthFailed(answer, 403, "timed out")


class DeadlineHelpersTest(SandboxTestCase):
    """Blocking helpers raise the timeout themselves once no time is left."""

    class Expired:
        def enter(self, kind):
            pass

        def leave(self):
            pass

        def remaining(self):
            return 0.0

    def test_sleep_with_no_time_left(self):
        answer = run(
            webhook="time.sleep(1)",
            context={"guard": self.Expired(), "timeout_seconds": 1},
        )
        self.assertWebhookFailed(answer, "execution timed out after 1 s")

    def test_finally_with_no_time_left(self):
        answer = run(
            webhook="try:\n    pass\nfinally:\n    result['message'] = 'finally ran'",
            context={"guard": self.Expired(), "timeout_seconds": 1},
        )
        self.assertWebhookFailed(answer, "execution timed out after 1 s")


class OutsideTheRunTest(SandboxTestCase):
    """Snippet code never runs once its call is over (nothing would stop it there)."""

    def finalize_in_thread(self, payload):
        done = threading.Event()

        def drop():
            payload.clear()
            done.set()

        thread = threading.Thread(target=drop, daemon=True)
        thread.start()
        thread.join(5)
        return done.is_set()

    def test_generator_finally_after_the_call(self):
        code = (
            "def g():\n"
            "    try:\n"
            "        yield 1\n"
            "    finally:\n"
            "        while True:\n"
            "            pass\n"
            "it = g()\n"
            "for x in it:\n"
            "    break\n"
            "payload['kept'] = it"
        )
        payload = {"a": 1}
        self.assertWebhookOk(run(webhook=code, payload=payload))
        self.assertIn("kept", payload)
        self.assertTrue(self.finalize_in_thread(payload))

    def test_generator_bare_except_after_the_call(self):
        code = (
            "def g():\n"
            "    while True:\n"
            "        try:\n"
            "            yield 1\n"
            "        except:\n"
            "            pass\n"
            "it = g()\n"
            "for x in it:\n"
            "    break\n"
            "payload['kept'] = it"
        )
        payload = {"a": 1}
        self.assertWebhookOk(run(webhook=code, payload=payload))
        self.assertIn("kept", payload)
        self.assertTrue(self.finalize_in_thread(payload))

    def test_generator_finalized_during_the_run_runs_its_finally(self):
        code = (
            "log = []\n"
            "def g():\n"
            "    try:\n"
            "        yield 1\n"
            "    finally:\n"
            "        log.append('closed')\n"
            "it = g()\n"
            "for x in it:\n"
            "    break\n"
            "it = None\n"
            "result['message'] = str(log)"
        )
        self.assertWebhookOk(run(webhook=code, payload={}), "['closed']")


class RecursionLimitTest(SandboxTestCase):
    def test_recursion_limit_setting(self):
        import sys

        previous = sys.getrecursionlimit()
        self.addCleanup(sys.setrecursionlimit, previous)
        sandbox.configure({"recursion_limit": 300, "preload_libraries": False})
        self.assertEqual(sys.getrecursionlimit(), 300)
        answer = run(webhook="def f(n):\n    return f(n + 1)\nf(0)")
        self.assertWebhookFailed(answer, "RecursionError")


class ConcurrentCallsTest(SandboxTestCase):
    """Several snippet threads share the interpreter, as in the host's pool."""

    def test_threads_keep_their_own_deadlines(self):
        results = {}

        def worker(number):
            guard = WatchdogGuard(LIMIT)
            try:
                if number % 2:
                    code = "while True:\n    pass"
                else:
                    code = "time.sleep(0.1)\nresult['message'] = 'worker %d'" % number
                results[number] = run(
                    webhook=code, context={"guard": guard, "timeout_seconds": LIMIT}
                )
            finally:
                guard.close()

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        self.assertEqual(len(results), 6)
        for number, answer in results.items():
            if number % 2:
                self.assertWebhookFailed(answer, "execution timed out after 0.3 s")
            else:
                self.assertWebhookOk(answer, "worker %d" % number)
