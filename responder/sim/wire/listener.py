"""The socket shell shared by the simulator's SSH and API servers: listen, a thread per connection, stop."""

from __future__ import annotations

import socket
import threading


def close_quietly(sock: socket.socket) -> None:
    """Shut down and close; a socket the peer already dropped may refuse either, and is gone anyway."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def shut_down(sock: socket.socket) -> None:
    """End the connection under its own thread: that thread sees EOF and closes the socket. Closing
    it here instead would free its descriptor while that thread may still read from it (a TLS
    read does, by number), and a file opened meanwhile would have its bytes read away."""
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the plain socket's: a TLS wrapper's would unwrap
    except OSError:
        pass


class TcpListener:
    """Accepts on one socket and hands each connection to ``serve_connection`` on its own thread.

    ``drop_connections`` ends every open connection and keeps listening (a router reboot);
    ``stop`` also closes the listener and joins the threads.
    """

    thread_prefix = "sim"

    def __init__(self) -> None:
        self._listener: socket.socket | None = None
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self.address: tuple[str, int] = ("", 0)

    def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(64)
        listener.settimeout(0.2)
        self._listener = listener
        self._stopping.clear()
        self.address = listener.getsockname()[:2]
        self._spawn(self._accept_loop, f"{self.thread_prefix}-accept")
        return self.address[1]

    def _spawn(self, target, name: str, *args) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _track(self, sock: socket.socket) -> None:
        """Close ``sock`` too on drop_connections (e.g. a TLS wrapper of an accepted socket)."""
        with self._lock:
            self._sockets.append(sock)

    def _untrack(self, sock: socket.socket) -> None:
        with self._lock:
            if sock in self._sockets:
                self._sockets.remove(sock)

    def _accept_loop(self) -> None:
        listener = self._listener
        while not self._stopping.is_set():
            try:
                sock, peer = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            self._track(sock)
            self._spawn(self._serve_tracked, f"{self.thread_prefix}-conn", sock, peer[0])

    def _serve_tracked(self, sock: socket.socket, peer: str) -> None:
        try:
            self.serve_connection(sock, peer)
        finally:
            self._untrack(sock)

    def serve_connection(self, sock: socket.socket, peer: str) -> None:
        raise NotImplementedError

    def drop_connections(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            shut_down(sock)

    def stop(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self.drop_connections()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout=2.0)
