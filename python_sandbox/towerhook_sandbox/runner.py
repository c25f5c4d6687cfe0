"""Runs authenticator and webhook code the way the Cetmix Tower controller does.

The boundary with Rust:

- ``configure(settings)`` once at start. Keys (all optional): ``max_message_chars``
  (int), ``recursion_limit`` (int, ``sys.setrecursionlimit``), ``timeout_seconds`` (float,
  the per-snippet limit quoted in timeout messages when the call's context has none),
  ``preload_libraries`` (bool, default True: import the libraries now rather than on
  first use), ``source`` (str, default ``"yaml"``: named in the Odoo stand-ins' errors),
  ``outbound_timeout_seconds`` (float, default 30: the timeout of a snippet's HTTP request
  when it sets none) and ``outbound_proxy`` (str or None, default None: the proxy URL,
  credentials included, every HTTP request of a snippet goes through; see
  ``outbound.py``) and ``max_response_bytes`` (int, default 1 MiB: the largest body a
  snippet's ``response`` may answer with).
- ``prepare(kind, code, secrets)`` once per snippet version (kind ``"authenticator"`` or
  ``"webhook"``, secrets ``{reference: value or None}``): inlines the secrets, compiles,
  applies the safe_eval checks and the sandbox's rewrites. Never raises: a snippet that
  cannot run gives a Prepared object whose runs report why.
- ``run_call(auth, hook, headers, raw_data, payload, context)`` once per call, returning
  ``(outcome, http_status, message_json, message_text)``; outcome ``"ok"``,
  ``"auth_failed"`` or ``"code_failed"``; or, when the deciding snippet's result carries
  a ``response`` (towerhook extension, rules below), the 5-tuple
  ``(outcome, http_status, message_json, message_text, response)`` with
  ``response = (status, [(name, value), ...], content_type, body_bytes)``: the host
  answers exactly that (``http_status`` is ``status``) and logs ``message_text`` (the
  body text, or a description of a bytes body). ``context`` (a dict, may be None)
  carries ``guard`` (enter/leave/remaining, see ``guard.py``), ``timeout_seconds``, and
  optionally ``max_message_chars``, ``max_response_bytes``, ``source``, ``odoo`` (see
  ``odoo_objects.py``; the host's RPC bridge is described in ``orm.py``), and the request
  context of the extension names: ``url`` (the public URL as the sender called it),
  ``method`` (``"GET"``/``"POST"``), ``query`` (dict, first value per key),
  ``client_ip``, ``request_id`` (see ``verify.Request``).
- ``secret_references(code)``: the secret references a snippet uses (helper for hosts).

Responses (towerhook extension): a webhook result's ``response`` is answered whatever
its ``exit_code`` (the outcome is ``"ok"`` for 0, ``"code_failed"`` otherwise, so the
log tells them apart); an authenticator answers with its ``response`` only when it
denies the call (``allowed`` falsy; outcome ``"auth_failed"``, the webhook code does not
run, ``http_code`` is ignored) and a result that allows the call and carries a
``response`` is an authentication code error. ``response`` None counts as absent. An
invalid ``response`` (``response.shape``) fails the call like any other snippet error:
500 for webhook code, 403 for an authenticator.

Inner exception texts: Odoo's UserError family and ZeroDivisionError keep ``str(e)``;
others are shown Odoo-18 style as ``repr(e)`` but without Odoo's "while evaluating <code>"
tail, which would leak inlined secrets. Secret values are masked in every message.
"""

import ast
import sys
import threading

from . import guard, libraries, odoo_objects, outbound, response, rewrite, validation
from . import secrets as inlining
from . import verify as checks
from .exceptions import PASSTHROUGH, SnippetTimeout, UserError, caused_by_timeout
from .formatting import attribute as format_attribute
from .safe_builtins import BUILTINS

AUTHENTICATOR = "authenticator"
WEBHOOK = "webhook"
OK = "ok"
AUTH_FAILED = "auth_failed"
CODE_FAILED = "code_failed"
NOT_A_DICT = "Webhook/Authenticator code error: result is not a dict"
_PREFIX = {
    AUTHENTICATOR: "Authentication code error: ",
    WEBHOOK: "Webhook code execution error: ",
}
_FAILED = {AUTHENTICATOR: (AUTH_FAILED, 403), WEBHOOK: (CODE_FAILED, 500)}
# Names of the request (towerhook extensions), given to a snippet only when it names them.
REQUEST_NAMES = ("verify", "url", "method", "query", "client_ip", "request_id")

_settings = {
    "max_message_chars": 65536,
    "recursion_limit": None,
    "timeout_seconds": None,
    "preload_libraries": True,
    "source": "yaml",
    "outbound_timeout_seconds": outbound.DEFAULT_TIMEOUT,
    "outbound_proxy": None,
    "max_response_bytes": response.DEFAULT_MAX_RESPONSE_BYTES,
}
# Odoo's builtins plus the helpers the rewrites call. The helpers live in the builtins, not
# the globals: a function keeps its builtins after the snippet's globals were cleared, so a
# generator finalized later still finds them.
_BUILTINS = dict(
    BUILTINS,
    **{
        rewrite.FORMAT_ATTRIBUTE: format_attribute,
        rewrite.UNCATCHABLE: guard.uncatchable,
        rewrite.CHECK: guard.check,
    },
)
# The limits of the call running on this thread.
_limits = threading.local()
# Globals every snippet starts from, per source (the Odoo stand-ins name it); copied per run.
_bases = {}
_libraries = libraries.build()


def configure(settings):
    global _libraries
    _settings.update(settings or {})
    if _settings.get("recursion_limit"):
        sys.setrecursionlimit(int(_settings["recursion_limit"]))
    outbound.configure(
        _settings.get("outbound_timeout_seconds"), _settings.get("outbound_proxy")
    )
    _libraries = libraries.build()
    _bases.clear()
    if _settings.get("preload_libraries", True):
        libraries.preload(_libraries)
    _install_unraisable_filter()


def _base(source):
    base = _bases.get(source)
    if base is None:
        base = {"__builtins__": _BUILTINS}
        base.update(odoo_objects.placeholders(source))
        base.update(_libraries)
        _bases[source] = base
    return base


def secret_references(code):
    """References of the secrets ``code`` uses, in order, each once."""
    return inlining.secret_references(code)


class Prepared:
    """One snippet version, compiled once: code to run, or the error to report."""

    __slots__ = ("kind", "code", "error", "spoil", "uses_odoo", "uses_request")

    def __init__(self, kind, code, error, spoil=(), uses_odoo=(), uses_request=()):
        self.kind = kind
        self.code = code
        self.error = error
        # every form in which the snippet's secret values could show in a message
        self.spoil = spoil
        # the Odoo objects (env, user, uid, tower...) the code names: a snippet reaches a
        # global only by its name (no globals(), no eval), so only these are built, and
        # snippets naming none run without touching the Odoo bridge
        self.uses_odoo = uses_odoo
        # the request extension names (verify, url, method...) it names: built only then
        self.uses_request = uses_request


def prepare(kind, code, secrets=None):
    spoil = ()
    try:
        if not (code or "").strip():
            return Prepared(kind, None, None)
        inlined = inlining.inline(code, secrets)
        spoil = inlining.needles(inlined.values.values())
        return _compile(kind, inlined, spoil)
    except Exception as exc:  # prepare never raises; the runs report the problem
        return Prepared(kind, None, _error_text(exc), spoil)


def _compile(kind, inlined, spoil):
    where = "<%s>" % kind
    try:
        tree = ast.parse(inlined.code, filename=where, mode="exec")
        tree = inlining.apply(tree, inlined)
        # The safe_eval checks, on the code as Odoo would compile it.
        validation.check_code(compile(tree, where, "exec", dont_inherit=True), where)
    except (SyntaxError, NameError, ValueError) as exc:
        # Odoo raises these before evaluating, so their text is not wrapped.
        return Prepared(kind, None, str(exc), spoil)
    code = compile(rewrite.rewrite(tree), where, "exec", dont_inherit=True)
    # The rewrites only add allowed constructs; checked so that a mistake cannot open a hole.
    validation.check_code(code, where)
    used = {name for nested in validation.walk_code(code) for name in nested.co_names}
    uses_odoo = tuple(name for name in odoo_objects.NAMES if name in used)
    uses_request = tuple(name for name in REQUEST_NAMES if name in used)
    return Prepared(kind, code, None, spoil, uses_odoo, uses_request)


class _Call:
    __slots__ = (
        "guard",
        "timeout_seconds",
        "source",
        "odoo",
        "request",
        "context",
    )

    def __init__(self, context):
        context = context or {}
        self.guard = context.get("guard") or guard.NO_GUARD
        self.timeout_seconds = context.get("timeout_seconds")
        self.source = context.get("source") or _settings["source"]
        self.odoo = context.get("odoo")
        self.request = None
        # read only when a snippet shapes its response
        self.context = context
        # Per call, so that several hosts in one process (tests) keep their own limit.
        _limits.max_message_chars = (
            context.get("max_message_chars") or _settings["max_message_chars"]
        )


def run_call(auth, hook, headers, raw_data, payload, context):
    call = _Call(context)
    if auth.uses_request or hook.uses_request:
        # One snapshot for both snippets, taken before either runs.
        call.request = checks.Request(
            headers, raw_data, payload, context, auth.uses_request + hook.uses_request
        )
    stage = AUTHENTICATOR
    try:
        denied = _stage(
            AUTHENTICATOR,
            auth,
            {
                "headers": headers,
                "raw_data": raw_data,
                "payload": payload,
                "result": {"allowed": False},
            },
            call,
        )
        _checkpoint()
        if denied is not None:
            return denied
        stage = WEBHOOK
        answer = _stage(
            WEBHOOK,
            hook,
            {
                "headers": headers,
                "payload": payload or {},
                "result": {"exit_code": 0, "message": None},
            },
            call,
        )
        _checkpoint()
        return answer
    except SnippetTimeout:
        return _timed_out(stage, call)


def _checkpoint():
    # A Python call checks for a pending asynchronous exception: a timeout injected just
    # before the snippet's leave() surfaces here, inside run_call, not after it.
    pass


def _stage(kind, prepared, names, call):
    """Runs one snippet and judges its result: a response, or None to go on.

    Everything the snippet's objects take part in (its run, reading its result, turning
    its exception into text, dropping its globals) happens between enter() and leave(),
    under the time limit.
    """
    spoil = prepared.spoil
    if prepared.error is not None:
        return _failure(kind, prepared.error, spoil)
    scope = _base(call.source).copy()
    session = None
    if call.odoo is not None and prepared.uses_odoo:
        try:
            provided, session = odoo_objects.provide(call.odoo, kind, prepared.uses_odoo)
        except SnippetTimeout:
            raise
        except Exception as exc:  # a host bridge that cannot say who runs the code
            return _failure(kind, "Odoo objects unavailable: %s" % _error_text(exc), spoil)
        scope.update(provided)
    if prepared.uses_request:
        scope.update(call.request.names(prepared.uses_request))
    scope.update(names)
    guard.begin(call.guard, session)
    try:
        call.guard.enter(kind)
        try:
            if prepared.code is not None:
                exec(prepared.code, scope)  # noqa: S102 - checked and rewritten in prepare
            result = scope.get("result")
            if not isinstance(result, dict):
                raise UserError(NOT_A_DICT)
            return _JUDGES[kind](result, spoil, call)
        except SnippetTimeout:
            raise
        except BaseException as exc:  # the snippet's own failure, reported to the caller
            if caused_by_timeout(exc):
                raise SnippetTimeout() from None
            return _failure(kind, _error_text(exc), spoil)
        finally:
            scope.clear()
    finally:
        # Cleared with plain stores, before leave(): a timeout surfacing after leave()
        # finds this thread marked as running no snippet. The run's Odoo objects stop
        # working (an authenticator's objects smuggled to the webhook code in payload
        # would otherwise act with the authenticator's rights), and objects of a run still
        # going work only on its own thread (guard.state.session).
        if session is not None:
            session.bridge = None
            guard.state.session = None
        guard.state.guard = None
        guard.state.uncatchable = BaseException
        call.guard.leave()


def _judge_authenticator(result, spoil, call):
    answer = result.get("response")
    if result.get("allowed"):
        if answer is not None:
            raise UserError(
                "result allows the call and has a response: an authenticator answers "
                "with its response only when it denies the call (allowed False)"
            )
        return None
    if answer is not None:
        return _answer(AUTH_FAILED, answer, spoil, call)
    message = str(result.get("message", "Authentication not allowed"))
    return _render(AUTH_FAILED, _denial_status(result.get("http_code")), message, spoil)


def _judge_webhook(result, spoil, call):
    answer = result.get("response")
    if answer is not None:
        outcome = OK if result.get("exit_code") == 0 else CODE_FAILED
        return _answer(outcome, answer, spoil, call)
    if result.get("exit_code") != 0:
        return _render(CODE_FAILED, 500, str(result.get("message")), spoil)
    return _render(OK, 200, result.get("message") or "OK", spoil)


_JUDGES = {AUTHENTICATOR: _judge_authenticator, WEBHOOK: _judge_webhook}


def _denial_status(http_code):
    # The module always answers 403; its documentation promises http_code. towerhook keeps
    # the promise for error statuses only.
    if type(http_code) is int and 400 <= http_code <= 599:
        return http_code
    return 403


def _render(outcome, status, message, spoil):
    limit = getattr(_limits, "max_message_chars", None) or _settings["max_message_chars"]
    return response.render(outcome, status, message, spoil, limit)


def _answer(outcome, spec, spoil, call):
    limit = call.context.get("max_response_bytes") or _settings["max_response_bytes"]
    status, headers, content_type, body, text = response.shape(spec, spoil, limit)
    return _render(outcome, status, text, spoil) + ((status, headers, content_type, body),)


def _failure(kind, text, spoil):
    outcome, status = _FAILED[kind]
    return _render(outcome, status, _PREFIX[kind] + text, spoil)


def _error_text(exc):
    try:
        if isinstance(exc, PASSTHROUGH):
            return str(exc)
        return repr(exc)
    except Exception:  # an argument that cannot be shown (an Odoo stand-in...)
        return "%s(<unprintable>)" % type(exc).__name__


def _timed_out(stage, call):
    seconds = call.timeout_seconds
    if seconds is None:
        seconds = _settings.get("timeout_seconds")
    text = "%sexecution timed out after %s s" % (_PREFIX[stage], _seconds(seconds))
    outcome, status = _FAILED[stage]
    while True:
        # A second injection may still be pending (re-injected just before leave()):
        # let it surface here rather than out of run_call.
        try:
            _checkpoint()
            return _render(outcome, status, text, ())
        except SnippetTimeout:
            continue


def _seconds(seconds):
    if seconds is None:
        return "?"
    if float(seconds).is_integer():
        return str(int(seconds))
    return repr(float(seconds))


def _install_unraisable_filter():
    # A generator of a snippet finalized outside its run is stopped by SnippetTimeout
    # (guard.check); Python reports such errors as "Exception ignored", which is noise here.
    previous = sys.unraisablehook
    if getattr(previous, "towerhook", False):
        return

    def hook(unraisable):
        if isinstance(unraisable.exc_value, SnippetTimeout):
            return
        previous(unraisable)

    hook.towerhook = True
    sys.unraisablehook = hook
