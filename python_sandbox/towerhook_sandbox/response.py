"""The message a call answers with: masked, size-limited, as JSON and as text.

``message_json`` is ``json.dumps(message)`` (the module answers
``json.dumps({"message": message})``, so a success message that is a list or a dict keeps
its JSON type); ``message_text`` is ``str(message)`` for the log. Both are limited to
``max_message_chars`` characters: a longer message becomes a string ending with
``TRUNCATED``.

``shape`` checks the ``response`` a snippet's result may carry (towerhook extension) and
turns it into what the host answers; see its docstring for the rules.
"""

import json
import re

from .exceptions import UserError
from .secrets import SPOILER, mask, mask_bytes

TRUNCATED = "… [truncated]"


def render(outcome, status, message, spoil, limit):
    """``(outcome, status, message_json, message_text)``.

    Raises what ``str(message)`` raises (a snippet's object that cannot be shown), so that
    the caller can report it as the snippet's failure.
    """
    if spoil:
        message = _masked(message, spoil)
    text = message if isinstance(message, str) else str(message)
    if spoil:
        text = mask(text, spoil)
    encoded = None
    if len(text) <= limit:
        try:
            encoded = json.dumps(message)
        except (TypeError, ValueError, RecursionError):
            # Not JSON-serialisable (the module would crash here): answer the text.
            encoded = json.dumps(text)
        if len(encoded) > limit:
            encoded = None
    if encoded is None:
        encoded = _json_within(text, limit)
    if len(text) > limit:
        text = (text[: max(limit - len(TRUNCATED), 0)] + TRUNCATED)[:limit]
    return (outcome, status, encoded, text)


def _json_within(text, limit):
    # A JSON string of at most ``limit`` characters; escapes can make it longer than the
    # text, so cut again by the overshoot until it fits.
    keep = min(len(text), limit)
    while True:
        encoded = json.dumps(text[:keep] + TRUNCATED)
        if len(encoded) <= limit or keep == 0:
            return encoded
        keep = max(keep - (len(encoded) - limit), 0)


def _masked(message, spoil):
    # Masks inside the structure rather than in its JSON: a replacement in the encoded
    # text could cut across JSON syntax.
    if isinstance(message, str):
        return mask(message, spoil)
    if isinstance(message, dict):
        return {_masked(key, spoil): _masked(value, spoil) for key, value in message.items()}
    if isinstance(message, list):
        return [_masked(item, spoil) for item in message]
    if isinstance(message, tuple):
        return tuple(_masked(item, spoil) for item in message)
    if isinstance(message, (int, float)) and not isinstance(message, bool):
        # A secret used as a number (``int(#!cxtower.secret.pin!#)``) would reach the
        # JSON answer in clear: the whole number becomes the spoiler.
        shown = repr(message)
        if mask(shown, spoil) != shown:
            return SPOILER
    return message


# --- shaped responses (towerhook extension)

DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024
MAX_HEADERS = 32
MAX_HEADER_CHARS = 8192  # names and values together: what proxies buffer by default
TEXT = "text/plain; charset=utf-8"
BINARY = "application/octet-stream"
_KEYS = ("status", "headers", "content_type", "body")
# Headers a snippet may not set: hop-by-hop and framing headers belong to the server and
# the proxies (a wrong Content-Length or Transfer-Encoding desynchronises the connection);
# Content-Type has its own key; Content-Encoding would lie about a body the sandbox cannot
# compress; cookies would be set for the whole origin towerhook shares with every other
# webhook (and often with Odoo), and Clear-Site-Data would wipe that origin's data.
_REFUSED = frozenset(
    [
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "content-type",
        "content-encoding",
        "set-cookie",
        "set-cookie2",
        "clear-site-data",
    ]
)
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
# Visible ASCII, space and tab: no CR/LF (header injection), no NUL, no non-ASCII (which
# servers and proxies treat inconsistently).
_VALUE = re.compile(r"[\t\x20-\x7e]*\Z")
_MEDIA_TYPE = re.compile(
    r"[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+"
    r"(?:[\t ]*;[\t\x20-\x7e]*)?\Z"
)
_NO_BODY = (204, 205, 304)


def shape(spec, spoil, max_bytes):
    """``(status, [(name, value), ...], content_type, body_bytes, log_text)``.

    ``spec`` is the snippet's ``result["response"]``: a dict with the optional keys
    ``status`` (int 200-599, default 200), ``headers`` (dict of str to str, default
    none), ``content_type`` (str, default ``text/plain; charset=utf-8`` for a str body,
    ``application/octet-stream`` for bytes) and ``body`` (str, sent as UTF-8, or bytes;
    default empty). Refused, with a UserError saying why: other keys or types, more than
    ``MAX_HEADERS`` headers or ``MAX_HEADER_CHARS`` characters of them, header names that
    are not HTTP tokens or appear twice (in any case), values with control or non-ASCII
    characters, the headers of ``_REFUSED`` and ``Proxy-*``, a body with status 204, 205
    or 304, a body over ``max_bytes`` bytes. Secret values are masked (``*****``) in the
    header values and the body (its UTF-8 form for bytes), as in messages. ``log_text``
    is the body text, or a short description of a bytes body.
    """
    if not isinstance(spec, dict):
        raise _invalid("response must be a dict, not %s" % type(spec).__name__)
    unknown = sorted(str(key) for key in spec if key not in _KEYS)
    if unknown:
        raise _invalid(
            "unknown key(s) %s (allowed: %s)" % (", ".join(unknown), ", ".join(_KEYS))
        )
    status = spec.get("status", 200)
    if type(status) is not int or not 200 <= status <= 599:
        raise _invalid("status must be an int from 200 to 599")
    headers = _headers(spec.get("headers"), spoil)
    body = spec.get("body")
    if body is None:
        body = ""
    if isinstance(body, str):
        text = mask(body, spoil) if spoil else body
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:
            raise _invalid("body is not encodable as UTF-8") from None
        default_type = TEXT
    elif isinstance(body, (bytes, bytearray)):
        data = mask_bytes(bytes(body), spoil) if spoil else bytes(body)
        text = None
        default_type = BINARY
    else:
        raise _invalid("body must be a str or bytes, not %s" % type(body).__name__)
    content_type = spec.get("content_type")
    if content_type is None:
        content_type = default_type
    elif not isinstance(content_type, str) or not _MEDIA_TYPE.match(content_type):
        raise _invalid("content_type must be a media type such as %r" % TEXT)
    if data and status in _NO_BODY:
        raise _invalid("status %d cannot have a body" % status)
    if len(data) > max_bytes:
        raise _invalid(
            "body is %d bytes, more than max_response_bytes (%d)" % (len(data), max_bytes)
        )
    if text is None:
        text = "<%d bytes of %s>" % (len(data), content_type)
    return status, headers, content_type, data, text


def _headers(given, spoil):
    if given is None:
        return []
    if not isinstance(given, dict):
        raise _invalid("headers must be a dict, not %s" % type(given).__name__)
    if len(given) > MAX_HEADERS:
        raise _invalid("at most %d headers" % MAX_HEADERS)
    headers = []
    seen = set()
    size = 0
    for name, value in given.items():
        if not isinstance(name, str) or not _TOKEN.match(name):
            raise _invalid("header name %r is not a valid HTTP header name" % (name,))
        lower = name.lower()
        if lower in _REFUSED or lower.startswith("proxy-"):
            raise _invalid("header %s is set by towerhook, not by the code" % name)
        if lower in seen:
            raise _invalid("header %s is given twice" % name)
        seen.add(lower)
        if not isinstance(value, str):
            raise _invalid(
                "header %s value must be a str, not %s" % (name, type(value).__name__)
            )
        if not _VALUE.match(value):
            raise _invalid(
                "header %s value has control or non-ASCII characters" % name
            )
        if spoil:
            value = mask(value, spoil)
        size += len(name) + len(value)
        headers.append((name, value))
    if size > MAX_HEADER_CHARS:
        raise _invalid("headers are longer than %d characters" % MAX_HEADER_CHARS)
    return headers


def _invalid(why):
    # A UserError: its text reaches the caller and the log as it is.
    return UserError("invalid response: " + why)
