"""Runs authenticator and webhook code the way the Cetmix Tower controller does.

The boundary with Rust is three functions:

- ``configure(settings)`` once at start;
- ``prepare(kind, code, secrets)`` once per snippet version: never raises, a snippet that
  cannot be compiled gives a Prepared object whose run reports the error;
- ``run_call(auth, hook, headers, raw_data, payload, context)`` once per call, returning
  ``(outcome, http_status, message_json, message_text)`` where outcome is ``"ok"``,
  ``"auth_failed"`` or ``"code_failed"``, message_json is ``json.dumps`` of the response
  message (Python's formatting, as the module answers) and message_text its ``str()`` for
  the log.
"""

import json

AUTHENTICATOR = "authenticator"
WEBHOOK = "webhook"

_settings = {"max_message_chars": 65536}


class UserError(Exception):
    """Odoo's user-facing error: its text reaches the caller unchanged."""


class SnippetTimeout(BaseException):
    """Injected by the host into a snippet that ran past its wall-clock limit.

    A BaseException, so that ``except Exception`` in a snippet cannot swallow it.
    """


def configure(settings):
    _settings.update(settings or {})


# Odoo's safe_eval builtins (odoo-safe-eval.md); nothing else is reachable.
_SAFE_BUILTINS = {
    "True": True,
    "False": False,
    "None": None,
    "bytes": bytes,
    "str": str,
    "unicode": str,
    "bool": bool,
    "int": int,
    "float": float,
    "enumerate": enumerate,
    "dict": dict,
    "list": list,
    "tuple": tuple,
    "map": map,
    "abs": abs,
    "min": min,
    "max": max,
    "sum": sum,
    "filter": filter,
    "sorted": sorted,
    "round": round,
    "len": len,
    "repr": repr,
    "set": set,
    "all": all,
    "any": any,
    "ord": ord,
    "chr": chr,
    "divmod": divmod,
    "isinstance": isinstance,
    "range": range,
    "xrange": range,
    "zip": zip,
    "Exception": Exception,
}


class Prepared:
    """One snippet version, compiled once."""

    __slots__ = ("kind", "code", "error")

    def __init__(self, kind, code, error):
        self.kind = kind
        self.code = code
        self.error = error


def prepare(kind, code, secrets):
    if not (code or "").strip():
        return Prepared(kind, None, None)
    try:
        compiled = compile(code, "<%s>" % kind, "exec")
    except SyntaxError as exc:
        return Prepared(kind, None, exc)
    return Prepared(kind, compiled, None)


def _default_result(kind):
    if kind == AUTHENTICATOR:
        return {"allowed": False}
    return {"exit_code": 0, "message": None}


def _evaluate(prepared, names):
    """Runs the snippet and returns its ``result``; raises what the snippet raised."""
    result = _default_result(prepared.kind)
    if prepared.error is not None:
        raise prepared.error
    if prepared.code is None:
        return result
    scope = {"__builtins__": _SAFE_BUILTINS, "result": result}
    scope.update(names)
    exec(prepared.code, scope)  # noqa: S102 - the whole point of this module
    result = scope.get("result")
    if not isinstance(result, dict):
        raise UserError("Webhook/Authenticator code error: result is not a dict")
    return result


def _error_text(exc):
    # Odoo keeps the text of its own user-facing errors and of ZeroDivisionError; other
    # exceptions are reported with their type, as safe_eval does (without the code).
    if isinstance(exc, (UserError, ZeroDivisionError)):
        return str(exc)
    return repr(exc)


def _response(outcome, status, message):
    text = str(message)
    limit = _settings["max_message_chars"]
    if len(text) > limit:
        text = text[:limit]
        message = text
    try:
        encoded = json.dumps(message)
    except (TypeError, ValueError):
        encoded = json.dumps(text)
    return (outcome, status, encoded, text)


def run_call(auth, hook, headers, raw_data, payload, context):
    try:
        verdict = _evaluate(
            auth, {"headers": headers, "raw_data": raw_data, "payload": payload}
        )
    except SnippetTimeout:
        return _response("auth_failed", 403, _timeout_text(AUTHENTICATOR, context))
    except Exception as exc:  # the snippet's own failure, reported to the caller
        return _response(
            "auth_failed", 403, "Authentication code error: %s" % _error_text(exc)
        )
    if not verdict.get("allowed"):
        message = str(verdict.get("message", "Authentication not allowed"))
        return _response("auth_failed", _denial_status(verdict.get("http_code")), message)

    try:
        result = _evaluate(hook, {"headers": headers, "payload": payload or {}})
    except SnippetTimeout:
        return _response("code_failed", 500, _timeout_text(WEBHOOK, context))
    except Exception as exc:
        return _response(
            "code_failed", 500, "Webhook code execution error: %s" % _error_text(exc)
        )
    if result.get("exit_code") != 0:
        return _response("code_failed", 500, str(result.get("message")))
    return _response("ok", 200, result.get("message") or "OK")


def _denial_status(http_code):
    # The module always answers 403; its documentation promises http_code. towerhook keeps
    # the promise for error statuses only.
    if type(http_code) is int and 400 <= http_code <= 599:
        return http_code
    return 403


def _timeout_text(kind, context):
    seconds = (context or {}).get("timeout_seconds")
    prefix = (
        "Authentication code error"
        if kind == AUTHENTICATOR
        else "Webhook code execution error"
    )
    return "%s: execution timed out after %s s" % (prefix, seconds)
