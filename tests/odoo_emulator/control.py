"""The control port: a small JSON API for tests (see README.md for every endpoint).

It stays up while the RPC port is down. Record operations run as the superuser and go
through the ORM, so they bump write_date and check constraints like any write.
"""
import datetime as dt
import json
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

import addon_sidecar
import orm
import seed
from fields import parse_datetime
from errors import exception_message, exception_name

PRECISE = "precise"


class ControlError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def _int(value, name):
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ControlError(400, f"{name} must be an integer") from None


def _read_records(db, model_name, ids, fields, precise):
    recs = db.env()[model_name].browse(ids)
    fnames = recs._read_fields(fields)
    if not precise:
        return recs._read(fnames)
    result = []
    for rec_id in ids:
        if rec_id not in recs._table():
            continue
        row = {"id": rec_id}
        for fname in fnames:
            if fname != "id":
                field = recs._fields[fname]
                row[fname] = field.convert_to_control(recs._get(rec_id, fname), db.env())
        result.append(row)
    return result


class ControlHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "OdooEmulatorControl/1"

    @property
    def emulator(self):
        return self.server.emulator

    def log_message(self, fmt, *args):
        if self.emulator.verbose:
            super().log_message(fmt, *args)

    # plumbing ------------------------------------------------------------------------------

    def _reply(self, status, payload):
        body = json.dumps(payload, default=str).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise ControlError(400, f"invalid JSON: {exc}") from None

    def _handle(self):
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            body = self._json_body()
            status, payload = self._route(self.command, parts, query, body)
        except ControlError as exc:
            status, payload = exc.status, {"error": str(exc)}
        except Exception as exc:  # ORM errors: report them like Odoo names them
            status, payload = 400, {"error": exception_message(exc),
                                    "name": exception_name(exc)}
        self._reply(status, payload)
        if self.command == "POST" and parts == ["shutdown"]:
            self.emulator.stopped.set()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    # routes ------------------------------------------------------------------------------

    def _route(self, verb, parts, query, body):
        emu = self.emulator
        head = parts[0] if parts else ""
        if verb == "GET" and head in ("", "health", "state"):
            return 200, emu.state()
        if verb == "POST" and head == "shutdown":
            return 200, {"ok": True}
        if verb == "POST" and head == "reset":
            loaded = emu.reset(version=body.get("version"), db_name=body.get("db"),
                               fixture=body.get("fixture"),
                               keep_fixture=body.get("keep_fixture", False))
            return 200, {**emu.state(), "loaded": loaded}
        if verb == "POST" and head == "version":
            if not body.get("version"):
                raise ControlError(400, "version is required")
            emu.reset(version=body["version"], keep_fixture=True)
            return 200, emu.state()
        if verb == "POST" and head == "fixture":
            return 200, seed.load_fixture(emu.db, body)
        if head == "rpc" and verb == "POST" and len(parts) == 2:
            if parts[1] == "down":
                emu.rpc_down()
            elif parts[1] == "up":
                emu.rpc_up()
            else:
                raise ControlError(404, "use /rpc/down or /rpc/up")
            return 200, emu.state()
        if head == "records":
            return self._records(verb, parts[1:], query, body)
        if head == "users" and verb == "POST":
            if not body.get("login"):
                raise ControlError(400, "login is required")
            return 200, {"id": seed.create_user(emu.db, **body)}
        if head == "api_keys":
            return self._api_keys(verb, parts[1:], body)
        if head in ("faults", "stall", "fail"):
            return self._faults(verb, head, parts[1:], body)
        if head == "journal":
            if verb == "DELETE":
                emu.journal.clear()
                return 200, {"ok": True}
            filters = {k: query.get(k) for k in ("transport", "service", "method", "model",
                                                 "uid", "login")}
            since = _int(query.get("since", 0), "since")
            return 200, {"entries": emu.journal.entries(since=since, **filters)}
        if head == "clock":
            return self._clock(verb, body)
        if head == "autovacuum" and verb == "POST":
            with emu.db.transaction():
                deleted = emu.db.env()["cx.tower.webhook.log"]._gc_delete_old_logs()
            return 200, {"deleted": deleted}
        if head == "call" and verb == "POST":
            return self._call(body)
        if head == "secrets" and verb == "GET":
            return self._secrets()
        if head == "addons" and not parts[1:]:
            return self._addons(verb, body)
        raise ControlError(404, f"no route {verb} /{'/'.join(parts)}")

    def _records(self, verb, parts, query, body):
        db = self.emulator.db
        if not parts or parts[0] not in db.registry:
            raise ControlError(404, f"unknown model {parts[0] if parts else ''!r}")
        model_name = parts[0]
        precise = str(query.get(PRECISE, body.get(PRECISE, ""))).lower() in ("1", "true")
        env = db.env(context={orm.KEEP_MAGIC: True})
        if verb == "GET" and len(parts) == 1 or verb == "POST" and parts[1:] == ["search"]:
            domain = body.get("domain")
            if domain is None and "domain" in query:
                domain = json.loads(query["domain"])
            fields = body.get("fields") or ([f for f in query["fields"].split(",") if f]
                                            if query.get("fields") else None)
            active_test = body.get("active_test", query.get("active_test", "0"))
            active_test = str(active_test).lower() in ("1", "true")
            limit = body.get("limit", query.get("limit"))
            with db.transaction():
                recs = env[model_name].with_context(active_test=active_test)
                ids = recs._search(domain or [], limit=int(limit) if limit else None,
                                   order=body.get("order", query.get("order")))
                return 200, {"records": _read_records(db, model_name, ids, fields, precise)}
        if verb == "GET" and len(parts) == 2:
            rec_id = _int(parts[1], "id")
            with db.transaction():
                found = _read_records(db, model_name, [rec_id], None, precise)
            if not found:
                raise ControlError(404, f"{model_name}({rec_id}) does not exist")
            return 200, found[0]
        if verb == "POST" and len(parts) == 1:
            values = body.get("values", body)
            many = isinstance(values, list)
            with db.transaction():
                vals_list = [{k: seed.resolve(env, v) for k, v in vals.items()}
                             for vals in (values if many else [values])]
                ids = env[model_name]._create(vals_list)
            return 200, {"ids": ids} if many else {"id": ids[0]}
        if verb in ("PATCH", "PUT") and len(parts) == 2:
            rec_id = _int(parts[1], "id")
            with db.transaction():
                values = {k: seed.resolve(env, v) for k, v in body.get("values", body).items()}
                env[model_name].browse(rec_id)._write(values)
                record = _read_records(db, model_name, [rec_id], None, precise)[0]
            return 200, record
        if verb == "DELETE" and len(parts) == 2:
            rec_id = _int(parts[1], "id")
            with db.transaction():
                existed = rec_id in db.tables[model_name]
                env[model_name].browse(rec_id)._unlink()
            return 200, {"deleted": existed}
        raise ControlError(404, "unsupported records route")

    def _api_keys(self, verb, parts, body):
        db = self.emulator.db
        if verb == "POST" and not parts:
            uid = body.get("uid")
            if uid is None:
                uid = next((rid for rid, row in db.tables["res.users"].items()
                            if row.get("login") == body.get("login")), None)
            if uid not in db.tables["res.users"] or not body.get("key"):
                raise ControlError(400, "need an existing user (uid or login) and a key")
            try:
                key, expires = seed.parse_api_key(
                    {k: v for k, v in body.items() if k in ("key", "expires")})
                db.add_api_key(key, uid, expires)
            except ValueError as exc:
                raise ControlError(400, str(exc)) from None
            return 200, {"uid": uid, "key": key,
                         "expires": expires.strftime("%Y-%m-%d %H:%M:%S") if expires else None}
        if verb == "DELETE" and len(parts) == 1:
            return 200, {"revoked": db.revoke_api_key(parts[0])}
        raise ControlError(404, "unsupported api_keys route")

    def _faults(self, verb, head, parts, body):
        faults = self.emulator.faults
        if verb == "GET":
            return 200, {"faults": faults.list()}
        if verb == "DELETE":
            if parts:
                return 200, {"removed": faults.remove(_int(parts[0], "id"))}
            faults.clear()
            return 200, {"ok": True}
        if verb != "POST":
            raise ControlError(404, "unsupported faults route")
        rule = dict(body)
        if head == "stall":
            rule["delay"] = rule.pop("seconds", rule.get("delay", 0))
        elif head == "fail":
            respond_keys = ("kind", "status", "body", "content_type", "name", "message",
                            "class")
            rule["respond"] = {k: rule.pop(k) for k in respond_keys if k in rule}
            rule["respond"].setdefault("kind", "html")
            rule["respond"].setdefault("status", 502)
        try:
            return 200, faults.add(rule)
        except ValueError as exc:
            raise ControlError(400, str(exc)) from None

    def _clock(self, verb, body):
        clock = self.emulator.db.clock
        if verb == "POST":
            if body.get("real"):
                clock.fixed, clock.offset = None, dt.timedelta(0)
            if body.get("now"):
                text = str(body["now"]).replace("T", " ")
                fixed = dt.datetime.fromisoformat(text) if "." in text else parse_datetime(text)
                clock.fixed = fixed.replace(tzinfo=None)
                clock.last = None   # an explicit time wins over "distinct" monotony
            if body.get("advance"):
                step = dt.timedelta(seconds=float(body["advance"]))
                if clock.fixed is not None:
                    clock.fixed += step
                else:
                    clock.offset += step
            if "distinct" in body:
                clock.distinct = bool(body["distinct"])
        return 200, clock.describe()

    def _call(self, body):
        """Run a model method as any user without credentials (what the UI would do)."""
        db = self.emulator.db
        uid = body.get("uid", orm.SUPERUSER_ID)
        with db.transaction():
            result = orm.call_kw(db.env(uid), body["model"], body["method"],
                                 body.get("args") or [], body.get("kwargs") or {})
            if isinstance(result, orm.BaseModel):
                result = {"model": result._name, "ids": result.ids}
        return 200, {"result": result}

    def _addons(self, verb, body):
        """Companion addons: GET lists them; POST {"name": true|false|{"installed",
        "members"}} installs/removes them (and adds group members)."""
        db = self.emulator.db
        if verb == "POST":
            try:
                spec = addon_sidecar.addons_spec(body)
                for name, wanted in spec.items():
                    addon_sidecar.set_installed(db, name, wanted["installed"],
                                                wanted["members"])
            except ValueError as exc:
                raise ControlError(400, str(exc)) from None
        elif verb != "GET":
            raise ControlError(404, "use GET or POST /addons")
        return 200, {"addons": addon_sidecar.describe(db)}

    def _secrets(self):
        """Clear secret values (key reference, server, partner, value), for assertions."""
        db = self.emulator.db
        env = db.env()
        values = env["cx.tower.key.value"]
        found = []
        for rec_id, row in sorted(db.tables["cx.tower.key.value"].items()):
            key = db.tables["cx.tower.key"].get(row.get("key_id"), {})
            found.append({"id": rec_id, "key_id": row.get("key_id"),
                          "reference": key.get("reference"), "server_id": row.get("server_id"),
                          "partner_id": row.get("partner_id"),
                          "value": values.browse(rec_id)._secret_text()})
        return 200, {"secrets": found}
