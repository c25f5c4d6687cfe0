# Copyright 2026 towerhook contributors
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The addon's logic as plain functions: no Odoo import, Python 3.7+ standard library only.

The Odoo models (``models/``) call these functions, the unit tests in
``odoo_addon/tests`` test them without Odoo, and towerhook's Odoo emulator
(``tests/odoo_emulator/addon_sidecar.py``) imports this file by path, so the
emulator's copies of the two RPC methods validate and select exactly as the addon does.

Contents:
- secret placeholders: ``#!cxtower.secret.REF!#`` extraction with the rules of
  ``cx.tower.key._extract_key_strings`` / ``_extract_key_parts`` (Cetmix Tower), and the
  choice of the global value (no server, no partner), the only one webhook code gets;
- validation of the log values ``towerhook_create_logs`` receives, the idempotency
  plan (``towerhook_uid``), and the messages of the errors both methods raise;
- the change notification request (URL, headers, body) sent to towerhook;
- the delivery settings of a webhook (towerhook extensions: duplicate guard, limits,
  accept-now-run-later), checked with towerhook's own rules (src/delivery/policy.rs).
"""
import datetime
import json
import re

ADDON = "cetmix_tower_webhook_sidecar"
GROUP_XMLID = ADDON + ".group_sidecar"
GROUP_FULL_NAME = "Cetmix Tower / Webhook Sidecar"

WEBHOOK_MODEL = "cx.tower.webhook"
AUTHENTICATOR_MODEL = "cx.tower.webhook.authenticator"
LOG_MODEL = "cx.tower.webhook.log"
SECRETS_METHOD = "towerhook_secret_values"
CREATE_LOGS_METHOD = "towerhook_create_logs"


class ValuesError(ValueError):
    """An argument the methods refuse. The Odoo models (and the emulator) raise it as
    ``odoo.exceptions.ValidationError`` with the same text.

    ``problems`` lists ``(record index or None, field or None, text)``; the message
    names every one of them (the first ``MAX_PROBLEMS``)."""

    def __init__(self, message, problems=()):
        super().__init__(message)
        self.problems = list(problems)

    @property
    def fields(self):
        return [field for _index, field, _text in self.problems if field]


MAX_PROBLEMS = 20
MAX_ID = 2 ** 31 - 1   # ids are PostgreSQL integers: a larger one would be a database error


def _is_id(value):
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID


def group_required_message(model_name, method_name):
    """Text of the AccessError raised for a caller outside the group."""
    return (
        "Only members of the group '%s' (%s) may call %s.%s. Add the towerhook service "
        "user to that group." % (GROUP_FULL_NAME, GROUP_XMLID, model_name, method_name)
    )


# ---------------------------------------------------------------------------------------
# secrets
# ---------------------------------------------------------------------------------------

KEY_PREFIX = "#!cxtower"
KEY_TERMINATOR = "!#"
SECRET_KEY_TYPE = "secret"


def extract_key_strings(code):
    """Every distinct key string in ``code``, in order of appearance.

    Same rules as ``cx.tower.key._extract_key_strings``: from each occurrence of
    ``#!cxtower`` up to and including the next ``!#``; an occurrence without a
    terminator after it is skipped (the scan goes on after the prefix)."""
    key_strings = []
    if not isinstance(code, str):
        return key_strings
    index_from = 0
    while index_from >= 0:
        index_from = code.find(KEY_PREFIX, index_from)
        if index_from < 0:
            break
        index_to = code.find(KEY_TERMINATOR, index_from)
        if index_to > 0:
            extract_to = index_to + len(KEY_TERMINATOR)
            key_string = code[index_from:extract_to]
            if key_string not in key_strings:
                key_strings.append(key_string)
            index_from = extract_to
        else:
            index_from += len(KEY_PREFIX)
    return key_strings


def extract_key_parts(key_string):
    """``(key type, reference)`` of a key string, or None when it is not one.

    Same rules as ``cx.tower.key._extract_key_parts``: delete every space and every
    ``!#``, split on ``.``; exactly three parts, the first being ``#!cxtower``. Only
    spaces are deleted (a tab or a newline stays part of the reference)."""
    parts = key_string.replace(" ", "").replace(KEY_TERMINATOR, "").split(".")
    if len(parts) == 3 and parts[0] == KEY_PREFIX:
        return parts[1], parts[2]
    return None


def extract_secret_references(code):
    """References of the ``secret`` placeholders in ``code``, distinct, in order.
    Placeholders of other key types and empty references are left out (the module's
    resolver answers nothing for them)."""
    references = []
    for key_string in extract_key_strings(code):
        parts = extract_key_parts(key_string)
        if parts and parts[0] == SECRET_KEY_TYPE and parts[1] and parts[1] not in references:
            references.append(parts[1])
    return references


def secret_references(codes):
    """References of the secret placeholders of several code texts, distinct, in order."""
    references = []
    for code in codes:
        for reference in extract_secret_references(code):
            if reference not in references:
                references.append(reference)
    return references


def choose_global_value(values):
    """The global value of a key: the first of ``(server_id, partner_id, item)`` with
    neither a server nor a partner, else None.

    Webhook and authenticator code is parsed without a server or a partner, so of the
    module's resolution order (server+partner, server, partner, global) only the last
    step can apply (``cx.tower.key._resolve_key_type_secret``)."""
    for server_id, partner_id, item in values:
        if not server_id and not partner_id:
            return item
    return None


# What the secrets answer holds for a reference without value. Not None: XML-RPC cannot
# carry None (Odoo marshals without allow_none), so one secret without value would turn
# the whole answer into a fault ("cannot marshal None unless allow_none is enabled") and
# towerhook would get no secret at all. False marshals on every transport, and no value
# is ever False (values are text), so "no value" stays distinct from "" (an empty value).
NO_SECRET_VALUE = False


def secret_value(value):
    """A resolved value as the method answers it: text stays text (an empty text too),
    anything else (None: unknown key or no global value; False: empty vault row) is
    NO_SECRET_VALUE (False)."""
    return value if isinstance(value, str) else NO_SECRET_VALUE


def select_secret_values(references, resolve):
    """``{reference: value or False}`` for exactly ``references``; ``resolve(reference)``
    answers the global value of the key with that reference, or None. No None anywhere,
    so the answer marshals over XML-RPC as well as JSON."""
    return {reference: secret_value(resolve(reference)) for reference in references}


def normalize_ids(value, name):
    """Record ids given to a method: a list (or tuple) of positive integers, a single
    integer, or None/False for none. Distinct, in order."""
    if value is None or value is False:
        return []
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise ValuesError(
            "%s must be a list of record ids, got %r" % (name, value),
            [(None, name, "not a list")],
        )
    ids = []
    for item in value:
        if not _is_id(item):
            raise ValuesError(
                "%s must be a list of record ids, got %r in it" % (name, item),
                [(None, name, "not an id")],
            )
        if item not in ids:
            ids.append(item)
    return ids


# ---------------------------------------------------------------------------------------
# log values
# ---------------------------------------------------------------------------------------

MANY2ONE_FIELDS = (
    ("webhook_id", WEBHOOK_MODEL),
    ("authenticator_id", AUTHENTICATOR_MODEL),
    ("user_id", "res.users"),
    ("country_id", "res.country"),
)
CHAR_FIELDS = ("endpoint", "ip_address")
TEXT_FIELDS = ("request_headers", "request_payload", "result_message", "error_message")
SELECTION_FIELDS = (
    ("request_method", ("post", "get")),
    ("authentication_status", ("success", "failed", "not_required")),
    ("code_status", ("success", "failed", "skipped")),
)
INTEGER_FIELDS = ("http_status",)
HTTP_STATUS_RANGE = (100, 599)
CALL_TIME_FIELD = "towerhook_call_time"
UID_FIELD = "towerhook_uid"
UID_MAX_LENGTH = 255

LOG_FIELDS = (
    tuple(name for name, _model in MANY2ONE_FIELDS)
    + CHAR_FIELDS
    + TEXT_FIELDS
    + tuple(name for name, _keys in SELECTION_FIELDS)
    + INTEGER_FIELDS
    + (CALL_TIME_FIELD, UID_FIELD)
)

_CALL_TIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?"
    r"(Z|[+-]00:?00)?$"
)


def _empty(value):
    return value is None or value is False


def normalize_call_time(value):
    """``towerhook_call_time``: UTC text ``YYYY-MM-DD HH:MM:SS`` (a ``T`` separator,
    fractional seconds and a ``Z``/``+00:00`` suffix are accepted and dropped) -> the
    same text as Odoo stores it; raises ValueError otherwise."""
    if not isinstance(value, str):
        raise ValueError("not a string")
    match = _CALL_TIME_RE.match(value.strip())
    if not match:
        raise ValueError("not a UTC date and time 'YYYY-MM-DD HH:MM:SS'")
    moment = datetime.datetime(*(int(part) for part in match.groups()[:6]))
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _check_text(value):
    if not isinstance(value, str):
        return "must be a string or false, got %r" % (value,)
    if "\x00" in value:
        return "must not contain NUL characters (PostgreSQL cannot store them)"
    return None


def _clean_field(name, value):
    """(clean value, problem text or None) for one known field."""
    many2one = dict(MANY2ONE_FIELDS)
    selections = dict(SELECTION_FIELDS)
    if name in many2one:
        if _empty(value):
            return False, None
        if not _is_id(value):
            return None, "must be a record id (a positive integer) or false, got %r" % (value,)
        return value, None
    if name in selections:
        keys = selections[name]
        if value not in keys or not isinstance(value, str):
            return None, "must be one of %s, got %r" % (
                ", ".join(repr(key) for key in keys), value)
        return value, None
    if name in INTEGER_FIELDS:
        if _empty(value):
            return False, None
        low, high = HTTP_STATUS_RANGE
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            return None, "must be an integer from %d to %d or false, got %r" % (
                low, high, value)
        return value, None
    if name == CALL_TIME_FIELD:
        if _empty(value):
            return False, None
        try:
            return normalize_call_time(value), None
        except ValueError as error:
            return None, "must be a UTC date and time 'YYYY-MM-DD HH:MM:SS' or false, " \
                "got %r (%s)" % (value, error)
    if name == UID_FIELD:
        if _empty(value):
            return False, None
        problem = _check_text(value)
        if problem:
            return None, problem
        if not value or len(value) > UID_MAX_LENGTH \
                or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
            return None, "must be 1 to %d printable characters, got %r" % (
                UID_MAX_LENGTH, value)
        return value, None
    # char and text fields
    if _empty(value):
        return False, None
    problem = _check_text(value)
    return (None, problem) if problem else (value, None)


def _problems_message(method, problems):
    lines = []
    for index, field, text in problems[:MAX_PROBLEMS]:
        where = "record %d" % index if index is not None else "argument"
        if field:
            lines.append("%s: field '%s' %s" % (where, field, text))
        else:
            lines.append("%s: %s" % (where, text))
    if len(problems) > MAX_PROBLEMS:
        lines.append("... and %d more" % (len(problems) - MAX_PROBLEMS))
    return "%s refused the batch (nothing was created):\n%s" % (method, "\n".join(lines))


def validate_log_values(vals_list):
    """Check every record of a ``towerhook_create_logs`` batch.

    Returns the clean values (lists of dicts with only the keys given; empty values as
    False; ``towerhook_call_time`` normalized). Raises ValuesError naming every refused
    record and field: unknown keys, wrong types, values outside the selections. The
    whole batch is refused when one record is."""
    if not isinstance(vals_list, (list, tuple)):
        raise ValuesError(
            "%s expects a list of dicts (one per log record), got %s"
            % (CREATE_LOGS_METHOD, type(vals_list).__name__),
            [(None, None, "not a list")],
        )
    allowed = set(LOG_FIELDS)
    problems, clean_list = [], []
    for index, vals in enumerate(vals_list):
        if not isinstance(vals, dict):
            problems.append((index, None, "must be a dict of field values, got %s"
                             % type(vals).__name__))
            continue
        unknown = sorted(repr(key) for key in vals if key not in allowed)
        if unknown:
            problems.append((index, None, "unknown field(s) %s; allowed: %s" % (
                ", ".join(unknown), ", ".join(LOG_FIELDS))))
        clean = {}
        for name in LOG_FIELDS:
            if name not in vals:
                continue
            value, problem = _clean_field(name, vals[name])
            if problem:
                problems.append((index, name, problem))
            else:
                clean[name] = value
        clean_list.append(clean)
    if problems:
        raise ValuesError(_problems_message(CREATE_LOGS_METHOD, problems), problems)
    return clean_list


def many2one_ids(clean_list):
    """``[(field, comodel, [ids])]`` of the many2one values of a batch (ids distinct,
    in order), for the existence check."""
    found = []
    for name, comodel in MANY2ONE_FIELDS:
        ids = []
        for vals in clean_list:
            value = vals.get(name)
            if value and value not in ids:
                ids.append(value)
        if ids:
            found.append((name, comodel, ids))
    return found


def check_references(clean_list, existing_ids):
    """Refuse the batch when a many2one value points at no record.

    ``existing_ids(comodel, ids)`` answers the ids among ``ids`` that exist. The
    ValuesError names each field and id (and the records using it): towerhook then
    sends the record again without its references to deleted records."""
    problems = []
    for name, comodel, ids in many2one_ids(clean_list):
        existing = set(existing_ids(comodel, ids))
        for missing in [i for i in ids if i not in existing]:
            for index, vals in enumerate(clean_list):
                if vals.get(name) == missing:
                    problems.append((index, name, "refers to %s id %d, which does not exist"
                                     % (comodel, missing)))
    if problems:
        raise ValuesError(_problems_message(CREATE_LOGS_METHOD, problems), problems)


def batch_uids(clean_list):
    """The idempotency keys of a batch, distinct, in order."""
    uids = []
    for vals in clean_list:
        uid = vals.get(UID_FIELD)
        if uid and uid not in uids:
            uids.append(uid)
    return uids


def plan_batch(clean_list, existing):
    """What to create, given ``existing`` = ``{towerhook_uid: log id}`` of the logs
    already in Odoo.

    Returns ``(to_create, slots)``: the values to create, in order, and one slot per
    input record, ``("existing", id)`` or ``("new", position in to_create)``. A record
    whose key exists is skipped (its id is answered); a key repeated within the batch
    is created once."""
    to_create, slots, planned = [], [], {}
    for vals in clean_list:
        uid = vals.get(UID_FIELD)
        if uid and uid in existing:
            slots.append(("existing", existing[uid]))
        elif uid and uid in planned:
            slots.append(("new", planned[uid]))
        else:
            if uid:
                planned[uid] = len(to_create)
            slots.append(("new", len(to_create)))
            to_create.append(vals)
    return to_create, slots


def assemble_ids(slots, created_ids):
    """The answer of ``towerhook_create_logs``: one log id per input record, in order."""
    created_ids = list(created_ids)
    return [value if kind == "existing" else created_ids[value] for kind, value in slots]


# ---------------------------------------------------------------------------------------
# change notification
# ---------------------------------------------------------------------------------------

NOTIFY_URL_PARAM = ADDON + ".notify_url"
NOTIFY_TOKEN_PARAM = ADDON + ".notify_token"
NOTIFY_TIMEOUT_PARAM = ADDON + ".notify_timeout"
NOTIFY_DEFAULT_TIMEOUT = 2.0
NOTIFY_MAX_TIMEOUT = 10.0
WATCHED_MODELS = (WEBHOOK_MODEL, AUTHENTICATOR_MODEL, "cx.tower.key", "cx.tower.key.value")


def notify_timeout(value):
    """The timeout parameter in seconds: a number from 0.1 to 10, else the default."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return NOTIFY_DEFAULT_TIMEOUT
    if seconds != seconds or seconds <= 0:   # NaN or not positive
        return NOTIFY_DEFAULT_TIMEOUT
    return min(max(seconds, 0.1), NOTIFY_MAX_TIMEOUT)


def notify_request(url, token, models, database=None):
    """``(url, headers, body bytes)`` of the POST telling towerhook to read the
    definitions again, or None when no usable URL is configured (only http/https)."""
    url = (url or "").strip() if isinstance(url, str) else ""
    if not re.match(r"^https?://[^\s/]+", url, re.IGNORECASE):
        return None
    headers = {"Content-Type": "application/json"}
    token = token.strip() if isinstance(token, str) else ""
    if token:
        headers["Authorization"] = "Bearer " + token
    body = {"source": ADDON, "models": sorted(set(models))}
    if database:
        body["database"] = database
    return url, headers, json.dumps(body, sort_keys=True).encode("utf-8")


# ---------------------------------------------------------------------------------------
# delivery settings (towerhook extensions), the fields the addon adds to cx.tower.webhook
# ---------------------------------------------------------------------------------------

DELIVERY_MODES = (("sync", "Run at once"), ("async", "Accept now, run later"))
DEFAULT_DEDUP_WINDOW_SECS = 24 * 3600
DEFAULT_RETRIES = 5
DEFAULT_ASYNC_STATUS = 202
DEFAULT_ASYNC_MESSAGE = "Accepted"
# field -> (lowest, highest) accepted; the same bounds as towerhook's
DELIVERY_BOUNDS = {
    "towerhook_dedup_window_secs": (1, 366 * 24 * 3600),
    "towerhook_max_body_bytes": (0, 100 * 1024 * 1024),
    "towerhook_max_concurrent_calls": (0, 100000),
    "towerhook_rate_per_minute": (0, 6000000),
    "towerhook_retries": (0, 100),
    "towerhook_async_status": (200, 299),
}
MAX_ASYNC_MESSAGE_CHARS = 4096
DELIVERY_FIELDS = (
    "towerhook_dedup_key",
    "towerhook_dedup_window_secs",
    "towerhook_max_body_bytes",
    "towerhook_max_concurrent_calls",
    "towerhook_rate_per_minute",
    "towerhook_mode",
    "towerhook_retries",
    "towerhook_async_status",
    "towerhook_async_message",
)
_HEADER_NAME_RE = re.compile(r"^[A-Za-z0-9-]+$")


def dedup_key_problem(text):
    """Why ``text`` is not a delivery id place (``header:NAME`` or ``json:a.b``), or None.
    Empty means no duplicate guard."""
    if not text:
        return None
    expected = "must be header:<Header-Name> or json:<field>[.<field>...]"
    kind, sep, rest = text.partition(":")
    if not sep or kind not in ("header", "json"):
        return "%s, not %r" % (expected, text)
    if kind == "header" and not _HEADER_NAME_RE.match(rest):
        return "%s: %r is not a header name (letters, digits and -)" % (expected, rest)
    if kind == "json" and (not rest or any(not part.strip() for part in rest.split("."))):
        return "%s: %r has an empty field name" % (expected, rest)
    return None


def delivery_problems(values):
    """Every delivery setting of ``values`` (a webhook's field values) out of its bounds,
    as texts naming the field. Absent fields are not checked."""
    problems = []
    if "towerhook_dedup_key" in values:
        problem = dedup_key_problem(values["towerhook_dedup_key"] or "")
        if problem:
            problems.append("towerhook_dedup_key: " + problem)
    for field, (low, high) in DELIVERY_BOUNDS.items():
        if field not in values:
            continue
        value = values[field]
        # Odoo keeps 0 in an empty integer: 0 means the default there
        if field in ("towerhook_dedup_window_secs", "towerhook_async_status") and value == 0:
            continue
        if not (isinstance(value, int) and not isinstance(value, bool) and low <= value <= high):
            problems.append("%s: must be between %d and %d, not %r" % (field, low, high, value))
    if "towerhook_mode" in values and values["towerhook_mode"] not in (
            False, None) + tuple(key for key, _label in DELIVERY_MODES):
        problems.append("towerhook_mode: must be sync or async, not %r" % (values["towerhook_mode"],))
    message = values.get("towerhook_async_message")
    if message and len(message) > MAX_ASYNC_MESSAGE_CHARS:
        problems.append("towerhook_async_message: must be at most %d characters"
                        % MAX_ASYNC_MESSAGE_CHARS)
    return problems
