"""``requests`` as snippets get it: towerhook sends, snippets get plain answers.

``get``, ``post``, ``delete`` and ``request`` take requests' arguments and send each
request through a ``requests.Session`` of its own, closed before the answer is returned:

- ``trust_env`` is off: no ``.netrc`` credentials, no ``HTTP(S)_PROXY``/``NO_PROXY``, no
  ``REQUESTS_CA_BUNDLE`` from the process environment. The only proxy is the one set in
  towerhook's settings (``outbound_proxy``), for http and https; its credentials never
  reach a snippet (they are cut from every error message too).
- ``verify`` is True (default) or False: a path would let a snippet probe the host's
  files through the error it gets, so paths (and ``cert``) are refused. ``proxies`` and
  ``hooks`` (a hook gets requests' live response) are refused; ``auth`` must be a
  ``(user, password)`` pair (a callable would get the live request); ``cookies`` a dict.
- The timeout is the snippet's, else towerhook's default (``outbound_timeout_seconds``,
  30 s), each part never more than the time the snippet has left.
- The body is always read at once (``stream=True`` is accepted and changes nothing):
  nothing stays connected after the call.

A snippet gets a ``Response`` holding a copy of the answer: ``status_code``, ``ok``,
``reason``, ``url``, ``headers`` (case-insensitive dict of its own), ``content``,
``text``, ``encoding``, ``apparent_encoding``, ``json()``, ``raise_for_status()``,
``elapsed``, ``cookies`` (a plain dict), ``history`` (responses), ``links``,
``is_redirect``, ``is_permanent_redirect``, ``iter_content()``, ``iter_lines()``,
``close()`` (nothing to close: the body was read). No request, connection, raw stream
or adapter is reachable from it.
Failures raise copies of requests' exceptions (same names and hierarchy, see
``mirror.py``) holding the message, ``response`` (a ``Response`` for ``HTTPError``, else
None) and ``request`` (always None).
"""

from . import guard
from .loading import load
from .mirror import Mirror, detached, reraise_timeout

_ALLOWED = frozenset(
    [
        "params",
        "data",
        "headers",
        "cookies",
        "files",
        "auth",
        "timeout",
        "allow_redirects",
        "stream",
        "verify",
        "json",
        "cert",
        "proxies",
        "hooks",
    ]
)
DEFAULT_TIMEOUT = 30.0
SCRUBBED = "*****"

_settings = {"timeout": DEFAULT_TIMEOUT, "proxies": None, "needles": ()}


def configure(timeout_seconds=None, proxy=None):
    """towerhook's default timeout (seconds) and outbound proxy URL (None: direct)."""
    timeout = DEFAULT_TIMEOUT if timeout_seconds is None else float(timeout_seconds)
    if not timeout > 0:
        raise ValueError("outbound_timeout_seconds must be positive")
    proxies = None
    needles = ()
    if proxy:
        proxy = str(proxy)
        _check_proxy(proxy)
        proxies = {"http": proxy, "https": proxy}
        needles = _credentials(proxy)
    _settings.update(timeout=timeout, proxies=proxies, needles=needles)


def _check_proxy(proxy):
    """ValueError unless ``proxy`` is a usable http(s) URL. The message never repeats the
    URL: it may hold a password."""
    from urllib.parse import urlsplit

    problem = None
    try:
        parts = urlsplit(proxy)
        port = parts.port
    except ValueError:
        problem = "its port is not a number between 0 and 65535"
    else:
        if parts.scheme not in ("http", "https"):
            problem = "it must start with http:// or https://"
        elif not parts.hostname or any(c.isspace() for c in parts.hostname):
            problem = "it has no valid host name"
        elif port == 0:
            problem = "its port is 0"
    if problem is not None:
        raise ValueError("outbound_proxy is not a proxy URL: %s" % problem)


def _credentials(proxy):
    """Every form in which the proxy's credentials could show in a message."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(proxy)
    found = set()
    userinfo = parts.netloc.rpartition("@")[0]
    if userinfo:
        found.add(userinfo)
        found.add(unquote(userinfo))
    for value in (parts.password, parts.username):
        if value:
            found.add(value)
            found.add(unquote(value))
    # Longest first, so that "user:pass" goes before "pass".
    return tuple(sorted(found, key=len, reverse=True))


def _scrub(text):
    for needle in _settings["needles"]:
        text = text.replace(needle, SCRUBBED)
    return text


# --- exceptions


class RequestException(OSError):
    """requests' RequestException, as snippets get it: a message and a narrow response."""

    def __init__(self, *args, response=None, request=None):
        super().__init__(*args)
        self.response = response
        self.request = None


RequestException.__module__ = "requests.exceptions"

_mirror = Mirror(
    lambda: load("requests", "requests", "requests").RequestException, RequestException
)


def _narrow_error(exc, response=None):
    """The snippet's copy of an exception raised while sending (never a library object)."""
    reraise_timeout(exc)
    requests = load("requests", "requests", "requests")
    if isinstance(exc, requests.RequestException):
        copy = _mirror.narrow_class(type(exc))(_scrub(str(exc)), response=response)
    else:
        copy = detached(exc, RequestException)
        scrubbed = _scrub(str(copy))
        if scrubbed != str(copy):
            copy = RequestException(scrubbed)
    return copy


# --- sending


def request(method, url, **kwargs):
    """requests' ``request``: sends and returns a Response (see the module docstring)."""
    _check(kwargs)
    failure = None
    try:
        answer = _send(method, url, kwargs)
    except Exception as exc:  # noqa: BLE001 - every failure reaches the snippet as a copy
        failure = exc
    if failure is not None:
        narrow = _narrow_error(failure)
        failure = None  # the original (and what it holds) goes with this frame
        raise narrow
    return answer


def get(url, params=None, **kwargs):
    return request("get", url, params=params, **kwargs)


def post(url, data=None, json=None, **kwargs):
    return request("post", url, data=data, json=json, **kwargs)


def delete(url, **kwargs):
    return request("delete", url, **kwargs)


def _check(kwargs):
    for name in kwargs:
        if name not in _ALLOWED:
            raise TypeError("request() got an unexpected keyword argument %r" % name)
    if kwargs.get("proxies") is not None:
        raise TypeError(
            "requests: proxies cannot be set by webhook code in towerhook; the outbound "
            "proxy is towerhook's setting outbound_proxy"
        )
    if kwargs.get("hooks") is not None:
        raise TypeError("requests: hooks are not available in towerhook")
    if kwargs.get("cert") is not None:
        raise TypeError(
            "requests: client certificates (cert) are not available in towerhook"
        )
    verify = kwargs.get("verify")
    if verify is not None and type(verify) is not bool:
        raise TypeError(
            "requests: verify must be True or False in towerhook (certificates are checked "
            "against towerhook's CA bundle)"
        )
    auth = kwargs.get("auth")
    if auth is not None and not (
        isinstance(auth, (tuple, list))
        and len(auth) == 2
        and all(isinstance(part, (str, bytes)) for part in auth)
    ):
        raise TypeError("requests: auth must be a (user, password) pair in towerhook")
    cookies = kwargs.get("cookies")
    if cookies is not None and not isinstance(cookies, dict):
        raise TypeError("requests: cookies must be a dict in towerhook")


def _send(method, url, kwargs):
    requests = load("requests", "requests", "requests")
    kwargs["timeout"] = _timeout(kwargs.get("timeout"))
    kwargs["stream"] = False
    kwargs["proxies"] = _settings["proxies"]
    kwargs.pop("hooks", None)
    kwargs.pop("cert", None)
    if kwargs.get("auth") is not None:
        kwargs["auth"] = tuple(kwargs["auth"])
    if kwargs.get("cookies") is not None:
        kwargs["cookies"] = dict(kwargs["cookies"])
    session = requests.Session()
    try:
        session.trust_env = False
        real = session.request(method, url, **kwargs)
        return _response(real)
    finally:
        session.close()


def _timeout(timeout):
    """The snippet's timeout, else towerhook's default, bounded by the time left."""
    default = _settings["timeout"]
    if isinstance(timeout, tuple):
        timeout = tuple(default if part is None else part for part in timeout)
    elif timeout is None:
        timeout = default
    return guard.bounded(timeout)


# --- responses


def _response(real):
    """A Response holding a copy of ``real`` (read in full), and of its history."""
    requests = load("requests", "requests", "requests")
    copy = requests.Response()
    copy._content = real.content
    copy._content_consumed = True
    copy.status_code = real.status_code
    copy.headers = requests.structures.CaseInsensitiveDict(real.headers)
    copy.url = real.url
    copy.encoding = real.encoding
    copy.reason = real.reason
    copy.elapsed = real.elapsed
    cookies = {cookie.name: cookie.value for cookie in real.cookies}
    history = tuple(_response(earlier) for earlier in real.history)
    real.close()
    return Response(copy, cookies, history)


class Response:
    """What a snippet gets from requests (see the module docstring). The copy of the
    answer lives in slots whose names a snippet cannot spell."""

    __slots__ = ("__copy", "__cookies", "__history")

    def __init__(self, copy, cookies, history):
        self.__copy = copy
        self.__cookies = cookies
        self.__history = history

    status_code = property(lambda self: self.__copy.status_code)
    reason = property(lambda self: self.__copy.reason)
    url = property(lambda self: self.__copy.url)
    headers = property(lambda self: self.__copy.headers)
    content = property(lambda self: self.__copy.content)
    text = property(lambda self: self.__copy.text)
    encoding = property(lambda self: self.__copy.encoding)
    apparent_encoding = property(lambda self: self.__copy.apparent_encoding)
    elapsed = property(lambda self: self.__copy.elapsed)
    links = property(lambda self: self.__copy.links)
    is_redirect = property(lambda self: self.__copy.is_redirect)
    is_permanent_redirect = property(lambda self: self.__copy.is_permanent_redirect)

    @property
    def cookies(self):
        return self.__cookies

    @property
    def history(self):
        return list(self.__history)

    @property
    def ok(self):
        return self.__copy.ok

    def json(self, **kwargs):
        failure = None
        try:
            return self.__copy.json(**kwargs)
        except Exception as exc:  # noqa: BLE001 - reaches the snippet as a copy
            failure = exc
        narrow = _narrow_error(failure)
        failure = None
        raise narrow

    def raise_for_status(self):
        failure = None
        try:
            self.__copy.raise_for_status()
            return
        except Exception as exc:  # noqa: BLE001 - reaches the snippet as a copy
            failure = exc
        narrow = _narrow_error(failure, response=self)
        failure = None
        raise narrow

    def iter_content(self, chunk_size=1, decode_unicode=False):
        return _generate(self.__copy.iter_content(chunk_size, decode_unicode))

    def iter_lines(self, chunk_size=512, decode_unicode=False, delimiter=None):
        return _generate(self.__copy.iter_lines(chunk_size, decode_unicode, delimiter))

    def close(self):
        pass

    def __bool__(self):
        return self.ok

    def __iter__(self):
        return self.iter_content(128)

    def __repr__(self):
        return "<Response [%s]>" % self.__copy.status_code


def _generate(iterator):
    yield from iterator
