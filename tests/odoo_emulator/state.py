"""Shared test-facing state of the emulator: the call journal and the fault rules."""
import datetime as dt
import itertools
import json
import threading

from errors import exception_message, exception_name


def _plain(value):
    """JSON-safe copy of call arguments (XML-RPC may carry datetimes or binaries)."""
    return json.loads(json.dumps(value, default=str))


class Journal:
    """Every RPC request the emulator answered, oldest first."""

    def __init__(self):
        self._lock = threading.Lock()
        self._entries = []
        self._seq = itertools.count(1)

    def record(self, call, executed, error, faults, duration):
        if isinstance(error, BaseException):
            error_name, error_message = exception_name(error), exception_message(error)
        else:
            error_name, error_message = error, None
        entry = {
            "seq": None,
            "time": dt.datetime.utcnow().isoformat(" "),
            "transport": call.transport, "path": call.path,
            "service": call.service, "method": call.method, "db": call.db,
            "uid": call.uid, "login": call.login, "credential": call.credential,
            "model": call.model, "model_method": call.model_method,
            "args": _plain(call.args), "kwargs": _plain(call.kwargs),
            "executed": executed, "ok": error is None, "error": error_name,
            "error_message": error_message, "faults": list(faults),
            "duration_ms": round(duration * 1000, 3),
        }
        with self._lock:
            entry["seq"] = next(self._seq)
            self._entries.append(entry)

    def entries(self, since=0, **filters):
        with self._lock:
            found = [e for e in self._entries if e["seq"] > since]
        for key, wanted in filters.items():
            if wanted is None:
                continue
            if key == "method":
                found = [e for e in found if wanted in (e["model_method"], e["method"])]
            else:
                found = [e for e in found if str(e.get(key)) == str(wanted)]
        return found

    def clear(self):
        with self._lock:
            self._entries.clear()


MATCH_KEYS = ("transport", "service", "method", "model", "path", "uid", "login")


class Faults:
    """Rules applied to matching RPC requests: a delay ("stall"), a canned answer, or both.

    rule = {"match": {...}, "delay": seconds, "respond": {...} | None,
            "phase": "before" | "after", "times": n | None}
    "before" acts before the call runs (a failure then means it never ran); "after" acts
    once it ran and committed (a failure then hides a success from the client).
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._rules = []
        self._ids = itertools.count(1)

    def add(self, rule):
        match = dict(rule.get("match") or {})
        for key in MATCH_KEYS:
            if key in rule and key not in match:
                match[key] = rule[key]
        unknown = set(match) - set(MATCH_KEYS)
        if unknown:
            raise ValueError(f"unknown match keys: {sorted(unknown)}")
        phase = rule.get("phase", "before")
        if phase not in ("before", "after"):
            raise ValueError("phase must be 'before' or 'after'")
        clean = {"id": next(self._ids), "match": match,
                 "delay": float(rule.get("delay") or 0), "respond": rule.get("respond"),
                 "phase": phase, "times": rule.get("times"), "hits": 0}
        with self._lock:
            self._rules.append(clean)
        return clean

    @staticmethod
    def _matches(match, call):
        for key, wanted in match.items():
            if key == "method":
                actual = [call.model_method, call.method]
            else:
                actual = [getattr(call, key, None)]
            options = wanted if isinstance(wanted, list) else [wanted]
            if not any(str(a) == str(o) for a in actual if a is not None for o in options):
                return False
        return True

    def take(self, call, phase):
        """Matching rules of a phase, counting one use of each."""
        taken = []
        with self._lock:
            for rule in list(self._rules):
                if rule["phase"] != phase or not self._matches(rule["match"], call):
                    continue
                rule["hits"] += 1
                if rule["times"] is not None:
                    rule["times"] -= 1
                    if rule["times"] <= 0:
                        self._rules.remove(rule)
                taken.append(dict(rule))
        return taken

    def list(self):
        with self._lock:
            return [dict(rule) for rule in self._rules]

    def remove(self, rule_id):
        with self._lock:
            before = len(self._rules)
            self._rules = [r for r in self._rules if r["id"] != rule_id]
            return len(self._rules) != before

    def clear(self):
        with self._lock:
            self._rules.clear()
