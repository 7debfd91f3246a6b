"""A TCP proxy the outage tests control: it forwards a free 127.0.0.1 port to a database.

`cut(seconds)` closes every connection and refuses new ones for that long (a database gone away),
`delay(seconds)` holds each forwarded chunk that long (a slow network), `reset()` drops every open
connection at once (a restarted server). Threads only: one acceptor, two pumps per connection.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from types import TracebackType


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._refuse_until = 0.0
        self._delay = 0.0
        self._closed = False
        self.connections = 0  # accepted and forwarded, for the tests to see reconnects
        threading.Thread(target=self._accept, daemon=True, name="tcp-proxy").start()

    def cut(self, seconds: float) -> None:
        """Close every connection now and refuse new ones for `seconds`."""
        with self._lock:
            self._refuse_until = time.monotonic() + seconds
        self.reset()

    def delay(self, seconds: float) -> None:
        """Hold every forwarded chunk `seconds` from now on (0 to stop)."""
        self._delay = seconds

    def reset(self) -> None:
        """Drop every open connection with a TCP reset."""
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            _abort(sock)

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        self.reset()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if time.monotonic() < self._refuse_until:
                _abort(client)  # as a refused connection: the client sees it fail at once
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
                server.settimeout(None)
            except OSError:
                _abort(client)
                continue
            with self._lock:
                self._sockets |= {client, server}
                self.connections += 1
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if self._delay:
                    time.sleep(self._delay)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            _abort(source)
            _abort(sink)


def _abort(sock: socket.socket) -> None:
    # SO_LINGER 0 makes close() send a reset, as a crashed server or a dropped link would;
    # shutdown first wakes the pump blocked reading it (close alone would not).
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
