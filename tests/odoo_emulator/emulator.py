#!/usr/bin/env python3
"""Odoo emulator for towerhook's integration tests (Python standard library only).

    python3 tests/odoo_emulator/emulator.py --port 0 --control-port 0 \
        [--version 17.0] [--db towerhook_test] [--fixture FILE] [--host 127.0.0.1]

Prints one line `READY rpc=<port> control=<port>` once both ports listen, then serves
until killed, until stdin reaches end of file (so an emulator orphaned by a crashed test
dies with it), or until POST /shutdown on the control port. See README.md.
"""
import argparse
import json
import os
import signal
import socket
import stat
import sys
import threading
from http.server import ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import orm  # noqa: E402
import seed  # noqa: E402
from control import ControlHandler  # noqa: E402
from state import Faults, Journal  # noqa: E402
from transports import Json2, JsonRpc, RpcHandler, XmlRpc  # noqa: E402

SUPPORTED_VERSIONS = ("16.0", "17.0", "18.0", "19.0")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler, emulator):
        host = address[0]
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.emulator = emulator
        super().__init__(address, handler)

    def handle_error(self, request, client_address):
        # Broken pipes after a "drop" or "down" are expected; stay quiet unless verbose.
        if self.emulator.verbose:
            super().handle_error(request, client_address)


class Emulator:
    def __init__(self, host="127.0.0.1", rpc_port=0, control_port=0, version="17.0",
                 db_name="towerhook_test", fixture=None, verbose=False):
        self.host = host
        self.rpc_port = rpc_port
        self.control_port = control_port
        self.verbose = verbose
        self.journal = Journal()
        self.faults = Faults()
        self.transports = {"jsonrpc": JsonRpc(self), "xmlrpc": XmlRpc(self),
                           "json2": Json2(self)}
        self._rpc_server = None
        self._control_server = None
        self._rpc_lock = threading.Lock()
        self._connections = set()
        self._connections_lock = threading.Lock()
        self.generation = 0          # bumped on every "down": stalled calls then give up
        self.stopped = threading.Event()
        self.fixture = None
        self.db = None
        self.reset(version=version, db_name=db_name, fixture=fixture)

    # database ----------------------------------------------------------------------------

    @property
    def version(self):
        return self.db.version

    @property
    def major(self):
        return self.db.major

    def reset(self, version=None, db_name=None, fixture=None, keep_fixture=False):
        """A fresh seeded database, optionally with a fixture loaded on top.

        The clock settings survive a reset; the journal and fault rules are kept too
        (tests clear them explicitly).
        """
        version = str(version or (self.db.version if self.db else "17.0"))
        if version not in SUPPORTED_VERSIONS:
            raise ValueError(f"unsupported version {version!r}; use one of "
                             f"{', '.join(SUPPORTED_VERSIONS)}")
        db = orm.Database(db_name or (self.db.name if self.db else "towerhook_test"), version)
        if self.db is not None:
            db.clock = self.db.clock
        seed.seed(db)
        if keep_fixture:
            fixture = self.fixture
        loaded = seed.load_fixture(db, fixture) if fixture else None
        self.db, self.fixture = db, fixture
        return loaded

    # RPC port ------------------------------------------------------------------------------

    def rpc_up(self):
        with self._rpc_lock:
            if self._rpc_server is not None:
                return self.rpc_port
            server = Server((self.host, self.rpc_port), RpcHandler, self)
            self.rpc_port = server.server_address[1]
            self._rpc_server = server
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                             name="rpc", daemon=True).start()
            return self.rpc_port

    def rpc_down(self):
        """Stop listening (connection refused) and cut the open connections."""
        with self._rpc_lock:
            server, self._rpc_server = self._rpc_server, None
            self.generation += 1
            if server is None:
                return
            server.shutdown()
            server.server_close()
            with self._connections_lock:
                connections = list(self._connections)
            for conn in connections:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    @property
    def rpc_is_up(self):
        return self._rpc_server is not None

    def track_connection(self, conn):
        with self._connections_lock:
            self._connections.add(conn)

    def untrack_connection(self, conn):
        with self._connections_lock:
            self._connections.discard(conn)

    # life cycle -----------------------------------------------------------------------------

    def start(self):
        self._control_server = Server((self.host, self.control_port), ControlHandler, self)
        self.control_port = self._control_server.server_address[1]
        threading.Thread(target=self._control_server.serve_forever,
                         kwargs={"poll_interval": 0.05}, name="control", daemon=True).start()
        self.rpc_up()
        return self

    def stop(self):
        self.rpc_down()
        if self._control_server is not None:
            self._control_server.shutdown()
            self._control_server.server_close()
            self._control_server = None
        self.stopped.set()

    def state(self):
        return {
            "version": self.version, "db": self.db.name, "host": self.host,
            "rpc_port": self.rpc_port, "control_port": self.control_port,
            "rpc_up": self.rpc_is_up, "clock": self.db.clock.describe(),
            "faults": self.faults.list(), "addons": sorted(self.db.addons),
        }


def _stdin_is_watchable():
    """Watch stdin only when its end means something: a pipe, socket or terminal.
    /dev/null or a regular file would end at once."""
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (OSError, ValueError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or sys.stdin.isatty()


def main(argv=None):
    parser = argparse.ArgumentParser(description="Odoo external API emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="RPC port (0: random)")
    parser.add_argument("--control-port", type=int, default=0, help="control port (0: random)")
    parser.add_argument("--version", default="17.0", choices=SUPPORTED_VERSIONS)
    parser.add_argument("--db", default="towerhook_test")
    parser.add_argument("--fixture", help="JSON fixture loaded after the seed data")
    parser.add_argument("--no-stdin-watch", action="store_true",
                        help="keep running when stdin closes")
    parser.add_argument("--verbose", action="store_true", help="log every HTTP request")
    args = parser.parse_args(argv)

    fixture = None
    if args.fixture:
        with open(args.fixture, encoding="utf-8") as handle:
            fixture = json.load(handle)
    emulator = Emulator(args.host, args.port, args.control_port, args.version, args.db,
                        fixture, args.verbose).start()
    print(f"READY rpc={emulator.rpc_port} control={emulator.control_port}", flush=True)

    signal.signal(signal.SIGTERM, lambda *_: emulator.stopped.set())
    if not args.no_stdin_watch and _stdin_is_watchable():
        def watch_stdin():
            # os.read on the raw descriptor: a daemon thread blocked in the buffered
            # reader would abort the interpreter at exit (it holds the buffer's lock).
            fd = sys.stdin.fileno()
            while os.read(fd, 65536):
                pass
            emulator.stopped.set()
        threading.Thread(target=watch_stdin, name="stdin", daemon=True).start()
    try:
        while not emulator.stopped.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
