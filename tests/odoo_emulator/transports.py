"""The RPC port: JSON-RPC (/jsonrpc), XML-RPC (/xmlrpc/2/<service>), JSON-2 (/json/2/...).

Each request goes through the same pipeline: parse into a `Call`, apply the fault rules
of the "before" phase (stall, canned failure), run it, apply the "after" rules, record it
in the journal, answer. Envelopes, status codes and error shapes follow Odoo:
  JSON-RPC  odoo/http.py JsonRPCDispatcher (errors: HTTP 200, code 200, or 0 from 19.0)
  XML-RPC   odoo/addons/base/controllers/rpc.py (int fault codes, allow_none=False)
  JSON-2    odoo/addons/rpc/controllers/json2.py + http.py Json2Dispatcher (19.0+)
"""
import datetime as dt
import inspect
import json
import re
import time
import xmlrpc.client
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

import orm
from errors import (HttpException, InjectedError, exception_message,
                    fault_code_for, serialize_exception, traceback_text)
from services import Call, dispatch_rpc, parse_object_call, version_info

JSON_TYPE = "application/json; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"
XML_TYPE = "text/xml; charset=utf-8"

DROP = object()  # answer nothing: close the connection


class Response:
    def __init__(self, status, body=b"", content_type=JSON_TYPE, headers=None):
        self.status = status
        self.body = body if isinstance(body, bytes) else body.encode("utf-8")
        self.content_type = content_type
        self.headers = list(headers or [])


def werkzeug_page(code, name, description):
    """The HTML error page werkzeug (hence Odoo) answers for routing errors."""
    return Response(code, (
        "<!doctype html>\n<html lang=en>\n"
        f"<title>{code} {name}</title>\n<h1>{name}</h1>\n<p>{description}</p>\n"), HTML_TYPE)


def not_found_page():
    return werkzeug_page(404, "Not Found",
                         "The requested URL was not found on the server. If you entered the "
                         "URL manually please check your spelling and try again.")


def proxy_page(status):
    """What nginx answers when Odoo is unreachable behind it."""
    reason = {502: "Bad Gateway", 503: "Service Temporarily Unavailable",
              504: "Gateway Time-out"}.get(status, "Error")
    return Response(status, (
        f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"), HTML_TYPE)


def find_recordset(value):
    if isinstance(value, orm.BaseModel):
        return value
    if isinstance(value, (list, tuple)):
        for item in value:
            found = find_recordset(item)
            if found is not None:
                return found
    if isinstance(value, dict):
        for item in value.values():
            found = find_recordset(item)
            if found is not None:
                return found
    return None


def json_default(value):
    """odoo.tools.date_utils.json_default; recordsets are not serialisable."""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, xmlrpc.client.Binary):
        return value.data.decode()
    if isinstance(value, orm.BaseModel):
        raise TypeError(f"Object of type {value._name} is not JSON serializable")
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def json_bytes(value):
    return json.dumps(value, ensure_ascii=False, default=json_default).encode("utf-8")


# ---------------------------------------------------------------------------------------
# JSON-RPC
# ---------------------------------------------------------------------------------------


class JsonRpc:
    name = "jsonrpc"

    def __init__(self, emulator):
        self.emulator = emulator

    def parse(self, req):
        mimetype = req.mimetype
        if mimetype not in ("application/json", "application/json-rpc"):
            return werkzeug_page(400, "Bad Request",
                                 "Request inferred type is compatible with ['http'] but "
                                 "'json' was forced by the route.")
        try:
            data = json.loads(req.body or b"null")
        except ValueError:
            return Response(400, "Invalid JSON data", HTML_TYPE)
        if not isinstance(data, dict):
            return Response(400, "Invalid JSON-RPC data", HTML_TYPE)
        params = data.get("params", {})
        call = Call(transport=self.name, path=req.path, remote_addr=req.remote_addr,
                    headers=req.headers)
        call.request_id = data.get("id")
        call.route_params = params if isinstance(params, dict) else {}
        call.service = call.route_params.get("service")
        call.method = call.route_params.get("method")
        call.params = call.route_params.get("args")
        if req.path == "/web/webclient/version_info":
            call.service, call.method, call.params = "common", "version", []
        elif call.service == "object":
            parse_object_call(call)
        return call

    def run(self, call):
        try:
            if call.path == "/jsonrpc":
                self._check_route_params(call.route_params)
            result = dispatch_rpc(self.emulator, call)
            body = {"jsonrpc": "2.0", "id": call.request_id}
            if result is not None:           # None: no "result" key at all, as Odoo
                body["result"] = result
            return Response(200, json_bytes(body)), None
        except Exception as exc:  # every error becomes an Odoo error envelope
            return self.error(call, exc), exc

    @staticmethod
    def _check_route_params(params):
        expected = ("service", "method", "args")
        for key in params:
            if key not in expected:
                raise TypeError(f"RPC.jsonrpc() got an unexpected keyword argument '{key}'")
        missing = [key for key in expected if key not in params]
        if missing:
            names = " and ".join(f"'{m}'" for m in missing)
            plural = "s" if len(missing) > 1 else ""
            raise TypeError(f"RPC.jsonrpc() missing {len(missing)} required positional "
                            f"argument{plural}: {names}")

    def error(self, call, exc):
        code = 0 if self.emulator.major >= 19 else 200
        body = {"jsonrpc": "2.0", "id": getattr(call, "request_id", None),
                "error": {"code": code, "message": "Odoo Server Error",
                          "data": serialize_exception(exc)}}
        return Response(200, json_bytes(body))


# ---------------------------------------------------------------------------------------
# XML-RPC
# ---------------------------------------------------------------------------------------

CONTROL_CHARACTERS = dict.fromkeys(set(range(32)) - {9, 10, 13})


class OdooMarshaller(xmlrpc.client.Marshaller):
    """Odoo's marshaller: dates as strings, bytes as str, control characters dropped."""

    dispatch = dict(xmlrpc.client.Marshaller.dispatch)

    def dump_unicode(self, value, write, escape=xmlrpc.client.escape):
        super().dump_unicode(value.translate(CONTROL_CHARACTERS), write, escape)

    def dump_datetime(self, value, write):
        self.dump_unicode(value.strftime("%Y-%m-%d %H:%M:%S"), write)

    def dump_date(self, value, write):
        self.dump_unicode(value.strftime("%Y-%m-%d"), write)

    def dump_bytes(self, value, write):
        self.dump_unicode(value.decode(), write)

    dispatch[str] = dump_unicode
    dispatch[dt.datetime] = dump_datetime
    dispatch[dt.date] = dump_date
    dispatch[bytes] = dump_bytes


def xml_response(values):
    """rpc.py `dumps`: allow_none=False, so None (or an int beyond 32 bits) fails."""
    marshalled = OdooMarshaller("utf-8", allow_none=False).dumps(values)
    return f'<?xml version="1.0"?>\n<methodResponse>\n{marshalled}\n</methodResponse>\n'


class XmlRpc:
    name = "xmlrpc"
    services = {"/xmlrpc/2/common": "common", "/xmlrpc/2/object": "object",
                "/xmlrpc/2/db": "db"}

    def __init__(self, emulator):
        self.emulator = emulator

    def parse(self, req):
        call = Call(transport=self.name, path=req.path, remote_addr=req.remote_addr,
                    headers=req.headers, service=self.services.get(req.path))
        try:
            params, method = xmlrpc.client.loads(req.body, use_datetime=True)
        except Exception as exc:  # a malformed body is a fault too (it is inside the try)
            call.parse_error = exc
            return call
        call.method = method
        call.params = list(params)
        if call.service == "object":
            parse_object_call(call)
        return call

    def run(self, call):
        try:
            if getattr(call, "parse_error", None):
                raise call.parse_error
            if call.service is None:
                raise KeyError(call.path.rsplit("/", 1)[-1])
            result = dispatch_rpc(self.emulator, call)
            recordset = find_recordset(result)
            if recordset is not None:
                raise TypeError(f"cannot marshal <class 'odoo.api.{recordset._name}'> objects")
            return Response(200, xml_response((result,)), XML_TYPE), None
        except Exception as exc:
            return self.error(call, exc), exc

    def error(self, call, exc):
        """xmlrpc_handle_exception_int: 4 access error, 3 denied, 2 user error, 1 else."""
        code = fault_code_for(exc)
        text = traceback_text(exc) if code == 1 else exception_message(exc)
        return Response(200, xml_response(xmlrpc.client.Fault(code, text)), XML_TYPE)


# ---------------------------------------------------------------------------------------
# JSON-2 (Odoo 19+)
# ---------------------------------------------------------------------------------------

BEARER_RE = re.compile(r"^bearer\s+(.+)$", re.IGNORECASE)


class Json2:
    name = "json2"

    def __init__(self, emulator):
        self.emulator = emulator

    def parse(self, req):
        if self.emulator.major < 19:
            return not_found_page()      # no such route before 19.0
        header_db = req.headers.get("X-Odoo-Database")
        if header_db and header_db != self.emulator.db.name:
            return not_found_page()      # dbfilter rejects it: no database, no db routes
        call = Call(transport=self.name, path=req.path, remote_addr=req.remote_addr,
                    headers=req.headers, db=self.emulator.db.name)
        parts = req.path.split("/")[3:]  # ['', 'json', '2', model, method]
        call.http_method = req.method
        if req.method != "POST" or len(parts) != 2 or not all(parts):
            call.route_error = HttpException(
                404, "NotFound", "Did you mean POST /json/2/<model>/<method>?")
            return call
        call.model, call.model_method = parts
        if req.body and req.mimetype != "application/json":
            return werkzeug_page(400, "Bad Request",
                                 "Request inferred type is compatible with ['http'] but "
                                 "'json2' was forced by the route.")
        body = {}
        if req.body:
            try:
                body = json.loads(req.body)
            except ValueError as exc:
                call.route_error = HttpException(
                    400, "BadRequest", f"could not parse the body as json: {exc.args[0]}")
                return call
        if not isinstance(body, dict):
            body = {}                    # Json2Dispatcher ignores a non-object body
        call.params = body
        call.args = body.get("ids") or []
        call.kwargs = {k: v for k, v in body.items() if k not in ("ids", "context")}
        token = BEARER_RE.match(req.headers.get("Authorization", "") or "")
        call.token = token.group(1).strip() if token else None
        return call

    def _authenticate(self, db, call):
        """ir.http._auth_method_bearer: an API key of an active user, else 401."""
        if not call.token:
            raise HttpException(
                401, "Unauthorized",
                "User not authenticated, use an API Key with a Bearer Authorization header.",
                [("WWW-Authenticate", "Bearer")])
        uid = db.api_key_uid(call.token)
        if uid is None or not db.tables["res.users"].get(uid, {}).get("active"):
            raise HttpException(401, "Unauthorized", "Invalid apikey",
                                [("WWW-Authenticate", "Bearer")])
        call.uid, call.credential = uid, "api_key"
        call.login = db.tables["res.users"][uid].get("login")
        return uid

    def run(self, call):
        db = self.emulator.db
        try:
            if getattr(call, "route_error", None):
                raise call.route_error
            with db.transaction(request={"remote_addr": call.remote_addr,
                                         "headers": call.headers}):
                uid = self._authenticate(db, call)
                result = self._call(db.env(uid), call)
            if isinstance(result, orm.BaseModel):
                result = result.ids
            return Response(200, json_bytes(result)), None
        except Exception as exc:
            return self.error(call, exc), exc

    @staticmethod
    def _call(env, call):
        """odoo/addons/rpc/controllers/json2.py web_json_2_rpc."""
        model_name, method_name, body = call.model, call.model_method, call.params
        recs = env.get(model_name)
        if recs is None:
            raise HttpException(404, "NotFound", f"the model {model_name!r} does not exist")
        context = body.get("context") or {}
        recs = recs.with_context(**context) if context else recs
        try:
            func = orm.get_public_method(recs, method_name, env.major)
        except AttributeError as exc:
            raise HttpException(404, "NotFound", exc.args[0]) from exc
        ids = body.get("ids") or ()
        if getattr(func, "_api", None) in ("model", "model_create") and ids:
            raise HttpException(422, "UnprocessableEntity",
                                f"cannot call {model_name}.{method_name} with ids")
        records = recs.browse(ids)
        try:
            inspect.signature(func).bind(records, **call.kwargs)
        except TypeError as exc:
            raise HttpException(422, "UnprocessableEntity", exc.args[0]) from exc
        return func(records, **call.kwargs)

    def error(self, call, exc):
        """Json2Dispatcher.handle_error: UserError family by http_status, HTTP errors by
        code, anything else 500; the body is serialize_exception()."""
        headers = []
        if isinstance(exc, HttpException):
            status = exc.code
            body = serialize_exception(exc, message=exc.description,
                                       arguments=(exc.description, exc.code))
            headers = exc.headers
        else:
            status = getattr(exc, "http_status", 500)
            body = serialize_exception(exc)
        return Response(status, json_bytes(body), headers=headers)


# ---------------------------------------------------------------------------------------
# the HTTP handler and the pipeline
# ---------------------------------------------------------------------------------------


class Request:
    def __init__(self, method, path, headers, body, remote_addr):
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        self.remote_addr = remote_addr
        self.mimetype = (headers.get("Content-Type") or "").split(";")[0].strip().lower()


def pick_transport(emulator, req):
    if req.path in ("/jsonrpc", "/web/webclient/version_info"):
        return emulator.transports["jsonrpc"] if req.method == "POST" else None
    if req.path.startswith("/xmlrpc/2/"):
        return emulator.transports["xmlrpc"] if req.method == "POST" else None
    if req.path == "/json/2" or req.path.startswith("/json/2/"):
        return emulator.transports["json2"]
    return None


def render_fault(respond, transport, call):
    kind = respond.get("kind", "html")
    status = int(respond.get("status", 502))
    if kind == "drop":
        return DROP
    if kind == "html":
        return proxy_page(status)
    if kind == "odoo_error":
        exc = InjectedError(respond.get("name", "psycopg2.OperationalError"),
                            respond.get("message", "injected failure"),
                            respond.get("class", "server"))
        return transport.error(call, exc)
    return Response(status, respond.get("body", ""),
                    respond.get("content_type", "text/plain; charset=utf-8"))


def version_route(emulator):
    """/web/version and /json/version (odoo/addons/rpc/controllers/__init__.py, 19.0):
    plain JSON {"version_info": [...], "version": "19.0"}, no authentication."""
    if emulator.major < 19:
        return not_found_page()
    info = version_info(emulator.version)
    return Response(200, json_bytes({"version_info": info["server_version_info"],
                                     "version": info["server_version"]}))


def serve(emulator, req):
    """Run one RPC request through faults, execution and the journal."""
    if req.path in ("/web/version", "/json/version"):
        return version_route(emulator)
    transport = pick_transport(emulator, req)
    if transport is None:
        return not_found_page()
    parsed = transport.parse(req)
    if isinstance(parsed, Response):
        return parsed
    call = parsed
    started = time.monotonic()
    generation = emulator.generation
    applied = []
    response, error = None, None
    for rule in emulator.faults.take(call, "before"):
        applied.append(rule["id"])
        if rule.get("delay"):
            time.sleep(float(rule["delay"]))
            if emulator.generation != generation:
                # the port went down while this call was stalled: it never reaches Odoo
                response, error = DROP, "fault:down"
                break
        if rule.get("respond"):
            response = render_fault(rule["respond"], transport, call)
            error = "fault:" + rule["respond"].get("kind", "html")
            break
    executed = response is None
    if executed:
        response, exc = transport.run(call)
        error = exc
        for rule in emulator.faults.take(call, "after"):
            applied.append(rule["id"])
            if rule.get("delay"):
                time.sleep(float(rule["delay"]))
            if rule.get("respond"):
                response = render_fault(rule["respond"], transport, call)
    emulator.journal.record(call, executed=executed, error=error, faults=applied,
                            duration=time.monotonic() - started)
    return response


class RpcHandler(BaseHTTPRequestHandler):
    """Speaks HTTP/1.1 with keep-alive, as Odoo's werkzeug server does."""

    protocol_version = "HTTP/1.1"
    server_version = "Werkzeug/3.0.1"
    sys_version = "Python/3.11"

    @property
    def emulator(self):
        return self.server.emulator

    def setup(self):
        super().setup()
        self.emulator.track_connection(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            self.emulator.untrack_connection(self.connection)

    def log_message(self, fmt, *args):
        if self.emulator.verbose:
            super().log_message(fmt, *args)

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self):
        body = self._read_body()
        path = urlsplit(self.path).path
        headers = {key.title(): value for key, value in self.headers.items()}
        req = Request(self.command, path, headers, body, self.client_address[0])
        try:
            response = serve(self.emulator, req)
        except Exception as exc:  # a bug of the emulator: still answer like a server
            response = Response(500, f"emulator error: {exc!r}", "text/plain; charset=utf-8")
        if response is DROP:
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
            return
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for key, value in response.headers:
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(response.body)

    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = _handle


