"""``verify``: one-line signature checks for the senders people use (towerhook extension).

Authenticator and webhook code get a ``verify`` object (when they name it) bound to the
call's request: its headers, its raw body (also in webhook code, which does not get
``raw_data`` itself), its form fields and its public URL, and to the server clock. Each
function returns True or False and keeps why the last check failed in ``verify.reason``
(``""`` after a success); the reason never holds a secret or an expected signature::

    result = {"allowed": verify.github(#!cxtower.secret.gh!#), "message": verify.reason}

Common rules:

- ``secret`` is a str (its UTF-8 bytes are the key), bytes, or a list or tuple of them:
  during a rotation the check passes when any of them matches. ``None`` items (a secret
  the module does not know inlines as ``None``) are skipped; no secret left fails the
  check (it never passes open).
- A header may carry several signatures (separated by commas or spaces for the one-value
  schemes, Stripe's repeated ``v1=``, Standard Webhooks' space-separated list): the
  check passes when one of them matches. At most ``MAX_SIGNATURES`` are looked at.
- Comparisons are constant-time (``hmac.compare_digest``) on the decoded digests.
- Where the scheme signs a timestamp, it must be within ``tolerance`` seconds (default
  300) of the server clock, in both directions. The signature is checked first, so a
  stale-timestamp reason means an authentic but old (replayed, or clock-skewed) request.
- Header names are matched without regard to case.

The schemes, as each sender documents them (``docs/provider-toolkit.md`` lists the
sources):

- ``github(secret)``: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>``.
- ``gitlab(token)``: ``X-Gitlab-Token`` equals the token.
- ``stripe(secret, tolerance=300)``: ``Stripe-Signature: t=<unix>,v1=<hex>[,v1=...]``,
  HMAC-SHA256 of ``<t>.<body>``; the ``whsec_...`` secret is used as it is (text).
- ``slack(signing_secret, tolerance=300)``: ``X-Slack-Signature: v0=<hex>`` of
  ``v0:<X-Slack-Request-Timestamp>:<body>``.
- ``shopify(secret)``: ``X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256 of the body>``.
- ``bitbucket(secret)``: ``X-Hub-Signature: sha256=<hex HMAC-SHA256 of the body>``.
- ``standard_webhooks(secret, tolerance=300)``: ``webhook-id``, ``webhook-timestamp``,
  ``webhook-signature: v1,<base64> [v1,<base64> ...]``, HMAC-SHA256 of
  ``<id>.<timestamp>.<body>``; a str secret is base64 (``whsec_`` prefix optional), as
  the specification serialises it; bytes are the raw key.
- ``twilio(token, url=None)``: ``X-Twilio-Signature: <base64 HMAC-SHA1>`` of the public
  URL followed by the form fields (``application/x-www-form-urlencoded`` body) sorted by
  name, each name then value (several values of a name sorted, each once); when the URL
  carries ``bodySHA256`` (JSON bodies), no fields are signed and the body's SHA-256 must
  equal that parameter. As Twilio's own libraries do, the URL is tried without its port
  and with the scheme's default port. ``url`` defaults to the request's public ``url``.
- ``zoom(secret, tolerance=300)``: ``x-zm-signature: v0=<hex>`` of
  ``v0:<x-zm-request-timestamp>:<body>``.
- ``meta(app_secret)``: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>``.
- ``hmac(secret, header, algorithm="sha256", encoding="hex", prefix="")``: any sender
  that puts ``<prefix><hex|base64|base64url HMAC of the body>`` in one header.

Isolation: the object's state lives in name-mangled slots (a double underscore, which
snippets cannot name) and the request snapshot it holds is its own; snippets reach only
the functions above and ``reason``. The snapshot is taken once per call, before the
authenticator runs, so the code cannot change what is verified by editing ``headers``.
"""

import base64
import binascii
import hashlib
import hmac as _hmac
import math
import time as _time
from urllib.parse import parse_qs, parse_qsl, urlsplit

DEFAULT_TOLERANCE = 300
# Bounds on what a sender controls: a header of a thousand signatures costs a thousand
# comparisons, nothing more, but there is no reason to look past a few.
MAX_SIGNATURES = 32
MAX_SECRETS = 16
MAX_FORM_FIELDS = 1000
# The server clock; tests replace it.
clock = _time.time

_FORM = "application/x-www-form-urlencoded"
# hashlib's constructors rather than names: hmac.digest takes its fast path with them.
_ALGORITHMS = {
    name: getattr(hashlib, name)
    for name in (
        "md5",
        "sha1",
        "sha224",
        "sha256",
        "sha384",
        "sha512",
        "sha3_224",
        "sha3_256",
        "sha3_384",
        "sha3_512",
    )
}
_ENCODINGS = ("hex", "base64", "base64url")


class Request:
    """What a call's checks and extension names see; one per call, never handed out.

    Built from ``run_call``'s arguments and context only when one of the call's snippets
    names ``verify``, ``url``, ``method``, ``query``, ``client_ip`` or ``request_id``.
    """

    __slots__ = (
        "headers",
        "lower",
        "raw",
        "url",
        "method",
        "query",
        "client_ip",
        "request_id",
    )

    def __init__(self, headers, raw_data, payload, context, wanted=("query",)):
        context = context or {}
        # A copy, so that the code cannot change what is verified; the lower-case index
        # for names in another case is built on the first miss (hosts pass the names
        # Title-Cased, as werkzeug shows them, so the usual lookup hits at once).
        self.headers = dict(headers or {})
        self.lower = None
        if isinstance(raw_data, str):
            raw_data = raw_data.encode("utf-8", "surrogatepass")
        self.raw = bytes(raw_data or b"")
        url = context.get("url")
        self.url = url if isinstance(url, str) and url else None
        method = context.get("method")
        self.method = method.upper() if isinstance(method, str) and method else None
        query = context.get("query")
        if "query" not in wanted:
            query = None
        elif isinstance(query, dict):
            query = dict(query)
        elif self.url is not None:
            query = _first_values(urlsplit(self.url).query)
        elif self.method == "GET" and isinstance(payload, dict):
            # The module's GET payload is the query, first value per key.
            query = dict(payload)
        else:
            query = {}
        self.query = query
        self.client_ip = context.get("client_ip")
        self.request_id = context.get("request_id")

    def names(self, wanted):
        """The extension names among ``wanted``, for one snippet run."""
        values = {}
        for name in wanted:
            if name == "verify":
                values[name] = Verify(self)
            else:
                values[name] = getattr(self, name)
        return values

    def header(self, name):
        value = self.headers.get(name)
        if value is None:
            if self.lower is None:
                self.lower = {
                    str(key).lower(): item for key, item in self.headers.items()
                }
            value = self.lower.get(name.lower())
        return value


def _first_values(query):
    values = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        values.setdefault(key, value)
    return values


class Verify:
    """The snippet's ``verify``: see the module docstring."""

    __slots__ = ("__request", "__reason")

    def __init__(self, request):
        self.__request = request
        self.__reason = ""

    def __repr__(self):
        return "<towerhook verify>"

    @property
    def reason(self):
        """Why the last check failed; ``""`` before any check and after a success."""
        return self.__reason

    # --- one function per sender

    def github(self, secret):
        return self.__body_hmac(secret, "X-Hub-Signature-256", "sha256", "hex", "sha256=")

    def gitlab(self, token):
        keys = _keys(token, "token")
        header = "X-Gitlab-Token"
        given = self.__request.header(header)
        if not keys:
            return self.__fail("no token given (None or empty)")
        if given is None:
            return self.__fail("missing header %s" % header)
        given = _bytes(given)
        matched = False
        for key in keys:
            matched |= _hmac.compare_digest(key, given)
        if not matched:
            return self.__fail("%s does not match" % header)
        return self.__pass()

    def stripe(self, secret, tolerance=DEFAULT_TOLERANCE):
        tolerance = _tolerance(tolerance)
        keys = _keys(secret)
        header = "Stripe-Signature"
        value = self.__request.header(header)
        if not keys:
            return self.__fail("no secret given (None or empty)")
        if value is None:
            return self.__fail("missing header %s" % header)
        stamps, signatures = [], []
        for element in value.split(","):
            name, _sep, item = element.strip().partition("=")
            if name == "t":
                stamps.append(item.strip())
            elif name == "v1":
                signatures.append(item.strip())
        if len(stamps) != 1:
            return self.__fail("%s must hold exactly one t= timestamp" % header)
        if _unix_time(stamps[0]) is None:
            return self.__fail("t= in %s is not a Unix time in seconds" % header)
        digests = _decoded(signatures, "hex")
        if not digests:
            return self.__fail("%s holds no v1= signature" % header)
        message = _bytes(stamps[0]) + b"." + self.__request.raw
        if not _any_match(keys, message, "sha256", digests):
            return self.__fail("signature in %s does not match" % header)
        return self.__fresh(stamps[0], tolerance)

    def slack(self, signing_secret, tolerance=DEFAULT_TOLERANCE):
        return self.__v0(
            signing_secret, "X-Slack-Signature", "X-Slack-Request-Timestamp", tolerance
        )

    def shopify(self, secret):
        return self.__body_hmac(secret, "X-Shopify-Hmac-Sha256", "sha256", "base64", "")

    def bitbucket(self, secret):
        return self.__body_hmac(secret, "X-Hub-Signature", "sha256", "hex", "sha256=")

    def standard_webhooks(self, secret, tolerance=DEFAULT_TOLERANCE):
        tolerance = _tolerance(tolerance)
        keys = _standard_keys(secret)
        if keys is None:
            return self.__fail("secret is not base64 (Standard Webhooks secrets are)")
        if not keys:
            return self.__fail("no secret given (None or empty)")
        request = self.__request
        ident = request.header("webhook-id")
        stamp = request.header("webhook-timestamp")
        value = request.header("webhook-signature")
        for name, given in (
            ("webhook-id", ident),
            ("webhook-timestamp", stamp),
            ("webhook-signature", value),
        ):
            if not given:
                return self.__fail("missing header %s" % name)
        if _unix_time(stamp) is None:
            return self.__fail("webhook-timestamp is not a Unix time in seconds")
        signatures = []
        for item in value.split():
            version, _sep, signature = item.partition(",")
            if version == "v1":
                signatures.append(signature)
        digests = _decoded(signatures, "base64")
        if not digests:
            return self.__fail("webhook-signature holds no v1 signature")
        message = b"%s.%s.%s" % (_bytes(ident), _bytes(stamp), request.raw)
        if not _any_match(keys, message, "sha256", digests):
            return self.__fail("signature in webhook-signature does not match")
        return self.__fresh(stamp, tolerance)

    def twilio(self, token, url=None):
        keys = _keys(token, "token")
        header = "X-Twilio-Signature"
        request = self.__request
        value = request.header(header)
        if url is None:
            url = request.url
        elif not isinstance(url, str):
            raise TypeError("url must be a str, not %s" % type(url).__name__)
        if not keys:
            return self.__fail("no token given (None or empty)")
        if value is None:
            return self.__fail("missing header %s" % header)
        if not url:
            return self.__fail(
                "the public URL is unknown: set towerhook's public_url or pass url="
            )
        digests = _decoded(_split(value), "base64")
        if not digests:
            return self.__fail("%s holds no base64 signature" % header)
        body_hash = parse_qs(urlsplit(url).query, keep_blank_values=True).get("bodySHA256")
        if body_hash is not None:
            # JSON bodies: Twilio signs the URL alone and commits to the body through it.
            fields = []
        else:
            try:
                fields = _form_fields(request)
            except ValueError as exc:
                return self.__fail(str(exc))
        signed = "".join(name + value for name, value in _twilio_order(fields))
        matched = False
        for candidate in _twilio_urls(url):
            message = (candidate + signed).encode("utf-8", "surrogatepass")
            matched |= _any_match(keys, message, "sha1", digests)
        if not matched:
            return self.__fail("signature in %s does not match" % header)
        if body_hash is not None:
            actual = hashlib.sha256(request.raw).hexdigest().encode()
            if not _hmac.compare_digest(actual, _bytes(body_hash[0].lower())):
                return self.__fail("body does not match bodySHA256 in the URL")
        return self.__pass()

    def zoom(self, secret, tolerance=DEFAULT_TOLERANCE):
        return self.__v0(secret, "x-zm-signature", "x-zm-request-timestamp", tolerance)

    def meta(self, app_secret):
        return self.__body_hmac(
            app_secret, "X-Hub-Signature-256", "sha256", "hex", "sha256="
        )

    def hmac(self, secret, header, algorithm="sha256", encoding="hex", prefix=""):
        if not isinstance(header, str) or not header:
            raise TypeError("header must be a non-empty str")
        if algorithm not in _ALGORITHMS:
            raise ValueError("algorithm must be one of %s" % ", ".join(_ALGORITHMS))
        if encoding not in _ENCODINGS:
            raise ValueError("encoding must be one of %s" % ", ".join(_ENCODINGS))
        if not isinstance(prefix, str):
            raise TypeError("prefix must be a str")
        return self.__body_hmac(secret, header, algorithm, encoding, prefix)

    # --- shared steps

    def __body_hmac(self, secret, header, algorithm, encoding, prefix):
        keys = _keys(secret)
        value = self.__request.header(header)
        if not keys:
            return self.__fail("no secret given (None or empty)")
        if value is None:
            return self.__fail("missing header %s" % header)
        given = [item[len(prefix) :] for item in _split(value) if item.startswith(prefix)]
        digests = _decoded(given, encoding)
        if not digests:
            return self.__fail("%s holds no %s%s signature" % (header, prefix, encoding))
        if not _any_match(keys, self.__request.raw, algorithm, digests):
            return self.__fail("signature in %s does not match" % header)
        return self.__pass()

    def __v0(self, secret, header, stamp_header, tolerance):
        # Slack and Zoom: "v0=" + hex HMAC-SHA256 of "v0:<timestamp>:<body>".
        tolerance = _tolerance(tolerance)
        keys = _keys(secret)
        request = self.__request
        value = request.header(header)
        stamp = request.header(stamp_header)
        if not keys:
            return self.__fail("no secret given (None or empty)")
        if value is None:
            return self.__fail("missing header %s" % header)
        if stamp is None:
            return self.__fail("missing header %s" % stamp_header)
        if _unix_time(stamp) is None:
            return self.__fail("%s is not a Unix time in seconds" % stamp_header)
        given = [item[3:] for item in _split(value) if item.startswith("v0=")]
        digests = _decoded(given, "hex")
        if not digests:
            return self.__fail("%s holds no v0= signature" % header)
        message = b"v0:%s:%s" % (_bytes(stamp.strip()), request.raw)
        if not _any_match(keys, message, "sha256", digests):
            return self.__fail("signature in %s does not match" % header)
        return self.__fresh(stamp, tolerance)

    def __fresh(self, stamp, tolerance):
        # Called after the signature matched: a stale timestamp then means an authentic
        # request replayed, or a clock off.
        age = clock() - _unix_time(stamp)
        if age > tolerance:
            return self.__fail(
                "timestamp is %d s old (tolerance %s s)" % (age, _shown(tolerance))
            )
        if -age > tolerance:
            return self.__fail(
                "timestamp is %d s in the future (tolerance %s s)"
                % (-age, _shown(tolerance))
            )
        return self.__pass()

    def __pass(self):
        self.__reason = ""
        return True

    def __fail(self, reason):
        self.__reason = reason
        return False


# --- helpers (module level: a snippet cannot reach them from the object)


def _bytes(text):
    return text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)


def _keys(secret, what="secret"):
    """The HMAC keys of ``secret`` (one, or a list/tuple for a rotation)."""
    if type(secret) is str and secret:
        return [secret.encode("utf-8", "surrogatepass")]  # the usual case, quickly
    items = secret if isinstance(secret, (list, tuple)) else (secret,)
    if len(items) > MAX_SECRETS:
        raise ValueError("at most %d %ss" % (MAX_SECRETS, what))
    keys = []
    for item in items:
        if item is None:
            continue
        if not isinstance(item, (str, bytes, bytearray)):
            # The type only: the value may be a secret.
            raise TypeError(
                "%s must be a str, bytes, or a list or tuple of them, not %s"
                % (what, type(item).__name__)
            )
        key = _bytes(item)
        if key:
            keys.append(key)
    return keys


def _standard_keys(secret):
    """Standard Webhooks keys: str secrets are base64 (``whsec_`` optional), bytes raw.

    None when a str secret is not base64."""
    items = secret if isinstance(secret, (list, tuple)) else (secret,)
    if len(items) > MAX_SECRETS:
        raise ValueError("at most %d secrets" % MAX_SECRETS)
    keys = []
    for item in items:
        if item is None:
            continue
        if isinstance(item, str):
            text = item[6:] if item.startswith("whsec_") else item
            text = text.strip()
            if not text:
                continue
            try:
                key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
            except (binascii.Error, ValueError):
                return None
        elif isinstance(item, (bytes, bytearray)):
            key = bytes(item)
        else:
            raise TypeError(
                "secret must be a str, bytes, or a list or tuple of them, not %s"
                % type(item).__name__
            )
        if key:
            keys.append(key)
    return keys


def _unix_time(stamp):
    """Seconds since the epoch in a header (digits only), or None."""
    stamp = stamp.strip()
    if not (stamp.isascii() and stamp.isdigit()) or len(stamp) > 12:
        return None
    return int(stamp)


def _tolerance(tolerance):
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)):
        raise TypeError("tolerance must be a number of seconds")
    if not math.isfinite(tolerance) or tolerance < 0:
        raise ValueError("tolerance must be a finite number of seconds, 0 or more")
    return tolerance


def _shown(seconds):
    return str(int(seconds)) if float(seconds).is_integer() else repr(float(seconds))


def _split(value):
    """The signatures of a one-value header: a sender (or a proxy joining repeated
    headers) may put several, separated by commas or spaces."""
    return value.replace(",", " ").split()[:MAX_SIGNATURES]


def _decoded(signatures, encoding):
    """The signatures that decode as ``encoding``; the others cannot match anyway."""
    digests = []
    for signature in signatures[:MAX_SIGNATURES]:
        signature = signature.strip()
        if not signature or not signature.isascii():
            continue
        try:
            if encoding == "hex":
                digests.append(bytes.fromhex(signature))
            elif encoding == "base64":
                digests.append(base64.b64decode(signature, validate=True))
            else:
                padded = signature + "=" * (-len(signature) % 4)
                digests.append(
                    base64.b64decode(padded.translate(_URLSAFE), validate=True)
                )
        except (binascii.Error, ValueError):
            continue
    return digests


_URLSAFE = str.maketrans("-_", "+/")


def _any_match(keys, message, algorithm, digests):
    """Whether one key's HMAC of ``message`` equals one of ``digests`` (constant-time
    per comparison; every comparison is made)."""
    matched = False
    for key in keys:
        expected = _hmac.digest(key, message, _ALGORITHMS[algorithm])
        for digest in digests:
            matched |= _hmac.compare_digest(expected, digest)
    return matched


def _form_fields(request):
    """Twilio's POST parameters: the fields of a form body, as a framework parses them."""
    content_type = request.header("Content-Type") or ""
    if content_type.split(";")[0].strip().lower() != _FORM or not request.raw:
        return []
    try:
        return parse_qsl(
            request.raw.decode("utf-8"),
            keep_blank_values=True,
            max_num_fields=MAX_FORM_FIELDS,
        )
    except UnicodeDecodeError:
        raise ValueError("form body is not UTF-8") from None
    except ValueError:
        raise ValueError("form body has more than %d fields" % MAX_FORM_FIELDS) from None


def _twilio_order(fields):
    """Names sorted, and under each name its distinct values sorted (twilio-python's
    ``compute_signature``)."""
    by_name = {}
    for name, value in fields:
        by_name.setdefault(name, set()).add(value)
    for name in sorted(by_name):
        for value in sorted(by_name[name]):
            yield name, value


def _twilio_urls(url):
    """The URL without its port and with the scheme's default port: Twilio signs either
    (its libraries try both, "since sig generation on back end is inconsistent")."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return [url]
    start = url.find("://")
    if start < 0 or not parts.netloc:
        return [url]
    start += 3
    end = start + len(parts.netloc)
    if url[start:end] != parts.netloc:
        return [url]
    if port is not None:
        without = parts.netloc.rsplit(":", 1)[0]
        with_port = parts.netloc
    else:
        without = parts.netloc
        with_port = "%s:%d" % (parts.netloc, 443 if parts.scheme == "https" else 80)
    urls = [url[:start] + without + url[end:], url[:start] + with_port + url[end:]]
    return urls if urls[0] != urls[1] else urls[:1]
