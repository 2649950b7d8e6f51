"""Real receivers on loopback for the notification tests: JSON over HTTP, SMTP, dead and hanging ports."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class JsonReceiver:
    """An HTTP server taking apprise's ``json://`` posts; ``status`` is what it answers."""

    def __init__(self, status: int = 200) -> None:
        self.posts: list[dict] = []
        self.status = status
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 -- http.server's name
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(min(length, 1 << 20))
                try:
                    receiver.posts.append(json.loads(body))
                except ValueError:
                    receiver.posts.append({"raw": body.decode(errors="replace")})
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"json://127.0.0.1:{self.port}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> JsonReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


class MailReceiver:
    """aiosmtpd on 127.0.0.1 keeping every message; ``url`` is apprise's mailto:// for it, without TLS."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list = []
        receiver = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 -- aiosmtpd's name
                receiver.messages.append(envelope)
                return "250 OK"

        def login(server, session, envelope, mechanism, auth_data):
            from aiosmtpd.smtp import AuthResult

            ok = (auth_data.login, auth_data.password) == (b"ips", b"secret")
            receiver.logins.append(ok)
            return AuthResult(success=ok)

        self.logins: list = []
        # No TLS on loopback: allow AUTH in the clear, as a local relay would.
        self.controller = Controller(
            Handler(), hostname="127.0.0.1", port=free_port(), authenticator=login, auth_require_tls=False
        )
        self.port = self.controller.port
        self.url = (
            f"mailto://ips:secret@127.0.0.1:{self.port}?smtp=127.0.0.1&mode=insecure"
            f"&from=ips@example.test&to=oncall@example.test"
        )

    def __enter__(self) -> MailReceiver:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()


def free_port() -> int:
    """A port nobody listens on (bound, then closed): a dead endpoint."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Hanging:
    """Accepts connections and never answers: the endpoint that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(50)
        self.port = self.sock.getsockname()[1]
        self.accepted: list = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def __enter__(self) -> Hanging:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()
