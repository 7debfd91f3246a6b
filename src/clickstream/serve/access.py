"""Who may talk to the server: the `Host` header check and, beyond loopback, a token.

- **Host header.** A page on an attacker's domain can point its DNS name at 127.0.0.1 (DNS
  rebinding) and then read a loopback dashboard as its own origin; its requests carry the
  attacker's name in `Host`. So `Host` must name this server: the address it is bound to, a loopback
  name when it listens on loopback, or a name given with `--allow-host` (`*` allows any). Bound
  beyond loopback, an IP literal and this machine's own names are accepted too: no DNS is involved
  there, and the token guards the rest.
- **Token.** Bound beyond loopback (`--host 0.0.0.0`), the server requires a token, generated and
  printed at start as Jupyter does, or given with `--token`. A browser passes it once as
  `?token=...` and gets it back as a cookie; scripts and Prometheus send `Authorization: Bearer
  <token>`. On loopback a token is required only when one is given.

`AccessMiddleware` is plain ASGI, so it never buffers a streaming response (SSE).
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import json
import secrets
import socket
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
WILDCARDS = frozenset({"", "0.0.0.0", "::"})
TOKEN_PARAM = "token"
TOKEN_MESSAGE = (
    "This server needs its token: open the URL it printed when it started (with ?token=...), "
    "or send 'Authorization: Bearer <token>'."
)


def is_loopback(host: str) -> bool:
    name = host.strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _machine_names() -> set[str]:
    names = {socket.gethostname().lower()}
    with contextlib.suppress(OSError):
        names.add(socket.getfqdn().lower())
    return names


@dataclass(frozen=True)
class Access:
    """The server's access rules; `Access.for_bind(host, ...)` builds the usual ones."""

    bind_host: str = "127.0.0.1"
    allow_hosts: frozenset[str] = frozenset()
    token: str | None = None
    machine_names: frozenset[str] = field(default_factory=lambda: frozenset(_machine_names()))

    @classmethod
    def for_bind(cls, host: str, allow_hosts: Iterable[str] = (), token: str | None = None) -> Access:
        """Beyond loopback without `token`, one is generated (print it: `login_url`)."""
        if token is None and not is_loopback(host):
            token = secrets.token_urlsafe(24)
        return cls(host, frozenset(h.lower().rstrip(".") for h in allow_hosts), token or None)

    @property
    def loopback(self) -> bool:
        return is_loopback(self.bind_host)

    def host_allowed(self, header: str | None) -> bool:
        if "*" in self.allow_hosts:
            return True
        if not header:
            return False  # HTTP/1.1 requires Host: a request without one is not a browser's
        name = _host_name(header)
        bound = self.bind_host.strip("[]").lower()
        if name in self.allow_hosts or name == bound:
            return True
        if is_loopback(name):
            return self.loopback or bound in WILDCARDS
        return not self.loopback and (_is_ip(name) or name in self.machine_names)

    def token_ok(self, candidate: str | None) -> bool:
        if self.token is None:
            return True
        return candidate is not None and hmac.compare_digest(candidate.encode(), self.token.encode())

    def url(self, port: int, path: str = "/") -> str:
        """Where to open the server; with `?token=` when one is needed."""
        host = self.bind_host
        if host in WILDCARDS:
            host = socket.gethostname()
        elif ":" in host:
            host = f"[{host}]"
        query = f"?{TOKEN_PARAM}={self.token}" if self.token else ""
        return f"http://{host}:{port}{path}{query}"

    def warning(self) -> str | None:
        """What to tell the user who binds beyond loopback."""
        if self.loopback:
            return None
        return (
            f"Listening on {self.bind_host or 'all interfaces'}: anyone who can reach this machine can "
            "connect; requests need the token in the URL printed (or 'Authorization: Bearer <token>'), "
            "and the traffic is plain HTTP."
        )


def _host_name(header: str) -> str:
    """The name in a Host header, without port, brackets or a trailing dot, lower-cased."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    if header.count(":") == 1:
        header = header.split(":", 1)[0]
    return header.rstrip(".")


class AccessMiddleware:
    def __init__(self, app: ASGIApp, access: Access) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        host = headers.get("host")
        if not self.access.host_allowed(host):
            await _refuse(send, 403, _host_message(host))
            return
        cookie = _cookie_name(scope)
        from_query = _query_token(scope)
        candidates = [from_query, _bearer(headers.get("authorization")), _cookie(headers, cookie)]
        if not any(self.access.token_ok(c) for c in candidates):
            await _refuse(send, 401, TOKEN_MESSAGE)
            return
        if from_query is not None and self.access.token is not None and self.access.token_ok(from_query):
            send = _setting_cookie(send, cookie, self.access.token)
        await self.app(scope, receive, send)


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _query_token(scope: Scope) -> str | None:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get(TOKEN_PARAM)
    return values[0] if values else None


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    kind, _, value = header.partition(" ")
    return value.strip() if kind.lower() in ("bearer", "token") else None


def _cookie_name(scope: Scope) -> str:
    # Cookies ignore ports: two servers on one host keep their tokens apart by the port in the name.
    server = scope.get("server") or ("", 0)
    return f"clickstream-token-{server[1]}"


def _cookie(headers: dict[str, str], name: str) -> str | None:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # a malformed cookie header is no token
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None else None


def _setting_cookie(send: Send, name: str, token: str) -> Send:
    cookie = f"{name}={token}; Path=/; HttpOnly; SameSite=Lax"

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message.setdefault("headers", [])
            message["headers"] = [*message["headers"], (b"set-cookie", cookie.encode("latin-1"))]
        await send(message)

    return sending


def _host_message(host: str | None) -> str:
    if not host:
        return "A Host header is required."
    name = _host_name(host)
    return (
        f"Host {host!r} is not a name of this server, so the request is refused (protection against "
        f"DNS rebinding). If {name!r} does reach this server, start it with --allow-host {name}."
    )


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"detail": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
