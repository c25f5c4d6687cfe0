"""Real servers on 127.0.0.1 for the tests: HTTP (also as a forward proxy), silent TCP,
and DNS. Each runs in a daemon thread and records what it received."""

import http.server
import json
import socket
import socketserver
import threading
import time


class HttpServer:
    """An HTTP/1.1 server on 127.0.0.1; ``requests`` lists what it received.

    Paths: ``/json`` (JSON body, a cookie), ``/status/<code>``, ``/redirect`` (302 to
    ``/json``), ``/echo`` (the request back as JSON), ``/slow/<seconds>``; anything else
    answers ``hello``. Requests with an absolute URL in the request line (as sent to a
    proxy) are answered the same way and recorded with ``proxied`` set.
    """

    def __init__(self, name="server"):
        self.name = name
        self.requests = []
        self._lock = threading.Lock()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                proxied = self.path.startswith("http://")
                path = self.path
                if proxied:
                    path = "/" + path.split("/", 3)[3] if path.count("/") >= 3 else "/"
                record = {
                    "method": self.command,
                    "path": path,
                    "target": self.path,
                    "proxied": proxied,
                    "headers": dict(self.headers.items()),
                    "body": body,
                }
                with owner._lock:
                    owner.requests.append(record)
                status, headers, payload = owner.answer(path, record)
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _handle

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path="/"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def answer(self, path, record):
        if path.startswith("/json"):
            body = json.dumps({"served_by": self.name, "ok": True}).encode()
            return 200, [
                ("Content-Type", "application/json"),
                ("Set-Cookie", "session_id=abc123; Path=/"),
            ], body
        if path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            return code, [("Content-Type", "text/plain")], b"status %d" % code
        if path.startswith("/redirect"):
            return 302, [("Location", "/json")], b""
        if path.startswith("/echo"):
            echoed = {
                "method": record["method"],
                "headers": record["headers"],
                "body": record["body"].decode("utf-8", "replace"),
                "served_by": self.name,
            }
            return 200, [("Content-Type", "application/json")], json.dumps(echoed).encode()
        if path.startswith("/slow/"):
            time.sleep(float(path.rsplit("/", 1)[1]))
            return 200, [("Content-Type", "text/plain")], b"slow"
        return 200, [("Content-Type", "text/plain; charset=utf-8")], (
            "hello from %s" % self.name
        ).encode()

    def close(self):
        self._server.shutdown()
        self._server.server_close()


class SilentServer:
    """Accepts TCP connections and never answers."""

    def __init__(self):
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(16)
        self.port = self._socket.getsockname()[1]

    def url(self, path="/"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def close(self):
        self._socket.close()


def closed_port():
    """A port on 127.0.0.1 that nothing listens on (connections are refused)."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


class DnsServer:
    """A DNS server on 127.0.0.1 (UDP) for the zone ``example.test``.

    ``www.example.test`` A 192.0.2.10 and 192.0.2.11, ``example.test`` MX 10
    mail.example.test and TXT "v=spf1 -all"; other names under the zone: NXDOMAIN.
    """

    def __init__(self):
        import dns.flags
        import dns.message
        import dns.rcode
        import dns.rrset

        records = {
            ("www.example.test.", "A"): ["192.0.2.10", "192.0.2.11"],
            ("example.test.", "MX"): ["10 mail.example.test."],
            ("example.test.", "TXT"): ['"v=spf1 -all"'],
        }
        names = {name for name, _type in records}

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                data, sock = self.request
                query = dns.message.from_wire(data)
                response = dns.message.make_response(query)
                question = query.question[0]
                name = question.name.to_text()
                rdtype = dns.rdatatype.to_text(question.rdtype)
                values = records.get((name, rdtype))
                if values:
                    response.answer.append(
                        dns.rrset.from_text_list(name, 300, "IN", rdtype, values)
                    )
                elif name not in names:
                    response.set_rcode(dns.rcode.NXDOMAIN)
                response.flags |= dns.flags.AA
                sock.sendto(response.to_wire(), self.client_address)

        import dns.rdatatype  # noqa: F401 - used by the handler

        self._server = socketserver.ThreadingUDPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def resolver(self):
        """A dnspython resolver asking only this server."""
        import dns.resolver

        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = self.port
        resolver.lifetime = 2.0
        return resolver

    def close(self):
        self._server.shutdown()
        self._server.server_close()
