"""The RPC services behind /jsonrpc and /xmlrpc/2: common, db, object.

Mirrors odoo/http.py `dispatch_rpc` and odoo/service/{common,db,model}.py: arguments are
positional; a wrong arity fails with Python's own TypeError, as it does in Odoo.
"""
from dataclasses import dataclass, field
from typing import Any, Optional

import orm
from errors import AccessDenied, DatabaseError


@dataclass
class Call:
    """One RPC request as the journal and the fault rules see it."""

    transport: str                    # "jsonrpc" | "xmlrpc" | "json2"
    path: str
    service: Optional[str] = None     # common | db | object (None for json2)
    method: Optional[str] = None      # service method: execute_kw, authenticate...
    db: Optional[str] = None
    uid: Optional[int] = None
    login: Optional[str] = None
    credential: Optional[str] = None  # "password" | "api_key" | None (not verified)
    model: Optional[str] = None
    model_method: Optional[str] = None
    args: list = field(default_factory=list)
    kwargs: dict = field(default_factory=dict)
    params: Any = None                # raw service params
    remote_addr: Optional[str] = None
    headers: dict = field(default_factory=dict)


def version_info(version):
    major, minor = (int(part) for part in str(version).split(".")[:2])
    return {
        "server_version": f"{major}.{minor}",
        "server_version_info": [major, minor, 0, "final", 0, ""],
        "server_serie": f"{major}.{minor}",
        "protocol_version": 1,
    }


def check_db(emulator, db_name):
    """Opening an unknown database fails in psycopg2 before any Odoo code runs."""
    if db_name != emulator.db.name:
        raise DatabaseError(
            'connection to server on socket "/var/run/postgresql/.s.PGSQL.5432" failed: '
            f'FATAL:  database "{db_name}" does not exist\n')
    return emulator.db


def verify_credentials(db, uid, secret):
    """res.users.check: active user, password or API key; which one matched, or raise."""
    row = db.tables["res.users"].get(uid)
    if not secret or row is None or not row.get("active"):
        raise AccessDenied()
    if isinstance(secret, str) and db.passwords.get(uid) == secret:
        return "password"
    if isinstance(secret, str) and db.api_key_uid(secret) == uid:
        return "api_key"
    raise AccessDenied()


def login_of(db, uid):
    row = db.tables["res.users"].get(uid) if isinstance(uid, int) else None
    return row.get("login") if row else None


def _named(functions):
    """Give the service functions their Odoo names, which Python's TypeError messages
    quote ("exp_authenticate() missing 1 required positional argument...")."""
    for func in functions.values():
        func.__qualname__ = func.__name__
    return functions


# common ------------------------------------------------------------------------------------


def _common(emulator, call):
    def exp_version():
        return version_info(emulator.version)

    def exp_about(extended=False):
        info = "See http://openerp.com"
        return [info, emulator.version] if extended else info

    def exp_login(db, login, password):
        return exp_authenticate(db, login, password, None)

    def exp_authenticate(db, login, password, user_agent_env):
        database = check_db(emulator, db)
        call.login = login
        with database.lock:
            for uid, row in database.tables["res.users"].items():
                if row.get("login") == login and row.get("active"):
                    try:
                        call.credential = verify_credentials(database, uid, password)
                    except AccessDenied:
                        return False
                    call.uid = uid
                    return uid
        return False  # wrong credentials answer False, not an error

    functions = _named({"version": exp_version, "about": exp_about, "login": exp_login,
                        "authenticate": exp_authenticate})
    if call.method not in functions:
        raise Exception(f"Method not found: {call.method}")
    return functions[call.method](*call.params)


# db ------------------------------------------------------------------------------------


def _db(emulator, call):
    def exp_list(document=False):
        return [emulator.db.name]

    def exp_db_exist(db_name):
        return db_name == emulator.db.name

    def exp_server_version():
        return version_info(emulator.version)["server_version"]

    functions = _named({"list": exp_list, "db_exist": exp_db_exist,
                        "server_version": exp_server_version})
    if call.method not in functions:
        raise KeyError(call.method)
    return functions[call.method](*call.params)


# object ------------------------------------------------------------------------------------


def parse_object_call(call):
    """Fill model/method/args of an object call for the journal, before running it."""
    params = list(call.params or [])
    call.db = params[0] if params else None
    if len(params) > 1:
        try:
            call.uid = int(params[1])
        except (TypeError, ValueError):
            call.uid = None
    if call.method == "execute_kw" and len(params) >= 5:
        call.model, call.model_method = params[3], params[4]
        call.args = params[5] if len(params) > 5 and isinstance(params[5], list) else []
        kwargs = params[6] if len(params) > 6 else {}
        call.kwargs = kwargs if isinstance(kwargs, dict) else {}
    elif call.method == "execute" and len(params) >= 5:
        call.model, call.model_method = params[3], params[4]
        call.args = list(params[5:])


def _object(emulator, call):
    params = list(call.params or [])
    db_name, uid, secret = params[0], int(params[1]), params[2]   # odoo.service.model.dispatch
    db = check_db(emulator, db_name)
    call.login = login_of(db, uid)
    if call.method not in ("execute", "execute_kw"):
        verify_credentials(db, uid, secret)
        raise NameError(f"Method not available {call.method}")

    def execute_kw(obj, method, args, kw=None):
        return execute(obj, method, *args, **(kw or {}))
    execute_kw.__qualname__ = "execute_kw"

    def execute(obj, method, *args, **kw):
        with db.transaction(request={"remote_addr": call.remote_addr,
                                     "headers": call.headers}):
            call.credential = verify_credentials(db, uid, secret)
            env = db.env(uid)
            return orm.call_kw(env, obj, method, list(args), kw)

    if call.method == "execute_kw":
        return execute_kw(*params[3:])
    return execute(*params[3:])


def dispatch_rpc(emulator, call):
    services = {"common": _common, "db": _db, "object": _object}
    if call.service not in services:
        raise KeyError(call.service)
    return services[call.service](emulator, call)
