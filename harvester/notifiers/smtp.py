"""One SMTP session under a total deadline: the socket-level half of the email notifier.

smtplib's ``timeout`` bounds each read, not the session; :class:`Watchdog` shuts the connection
down when the session's deadline passes, wherever it is (connect, banner, EHLO, STARTTLS, AUTH,
DATA). :func:`connect` opens a session as ``[channels.email] security`` asks. Imports only the
standard library, structlog and pydantic's SecretStr; what is sent is :mod:`.email`'s.
"""

from __future__ import annotations

import contextlib
import os
import smtplib
import socket
import ssl
import threading
import time
from typing import Literal

import structlog
from pydantic import SecretStr

log = structlog.get_logger(__name__)

Security = Literal["starttls", "tls", "none"]


class Watchdog:
    """Shuts down an SMTP session's connection when its deadline passes.

    smtplib's timeout applies to each read, so a server dripping its banner byte by byte keeps
    a session alive for ever; shutting the connection down from this timer wakes the blocked
    read, write or TLS handshake at once, and the session fails with an error that says why.
    The connection is held by its descriptor: STARTTLS and implicit TLS replace the socket
    object around the same descriptor, mid-handshake."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = time.monotonic()
        self.expired = threading.Event()
        self._fd: int | None = None
        self._closed = False
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def left(self) -> float:
        return max(0.001, self.seconds - (time.monotonic() - self.started))

    def connected(self, sock: socket.socket) -> None:
        with self._lock:
            self._fd = sock.fileno()

    def close(self) -> None:
        """The session is over (its socket is about to be closed): never touch it again."""
        with self._lock:
            self._closed = True
        self._timer.cancel()

    def _expire(self) -> None:
        self.expired.set()
        with self._lock:
            if self._fd is None or self._closed:
                return
            # shutdown acts on the connection, whichever descriptor names it
            with contextlib.suppress(OSError), socket.socket(fileno=os.dup(self._fd)) as sock:
                sock.shutdown(socket.SHUT_RDWR)


class WatchedSMTP(smtplib.SMTP):
    """smtplib.SMTP whose connection the watchdog can reach from the moment it exists."""

    def __init__(self, host: str, port: int, *, timeout: float, watchdog: Watchdog) -> None:
        self._watchdog = watchdog  # before connecting: the banner is read inside __init__
        super().__init__(host, port, timeout=min(timeout, watchdog.left()))

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = socket.create_connection((host, port), timeout, self.source_address)
        self._watchdog.connected(sock)
        return sock

    def close(self) -> None:
        self._watchdog.close()
        super().close()


class WatchedSMTPSSL(smtplib.SMTP_SSL):
    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout: float,
        context: ssl.SSLContext,
        watchdog: Watchdog,
    ) -> None:
        self._watchdog = watchdog
        self._server_name = host  # what the certificate must name
        super().__init__(host, port, timeout=min(timeout, watchdog.left()), context=context)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        # SMTP_SSL's own _get_socket, with the raw connection shown to the watchdog before
        # the TLS handshake starts
        sock = socket.create_connection((host, port), timeout, self.source_address)
        self._watchdog.connected(sock)
        return self.context.wrap_socket(sock, server_hostname=self._server_name)

    def close(self) -> None:
        self._watchdog.close()
        super().close()


def connect(
    host: str,
    port: int,
    security: Security,
    watchdog: Watchdog,
    *,
    timeout: float,
    context: ssl.SSLContext,
    username: SecretStr | None = None,
    password: SecretStr | None = None,
) -> smtplib.SMTP:
    """An SMTP session ready for ``send_message``: connected (implicit TLS for ``tls``),
    greeted, upgraded by STARTTLS for ``starttls`` and logged in when credentials are given;
    ``watchdog`` can cut it off from the first byte. Closed again if any step fails."""
    smtp: smtplib.SMTP
    if security == "tls":
        smtp = WatchedSMTPSSL(host, port, timeout=timeout, context=context, watchdog=watchdog)
    else:
        smtp = WatchedSMTP(host, port, timeout=timeout, watchdog=watchdog)
    try:
        smtp.ehlo_or_helo_if_needed()
        if security == "starttls":
            smtp.starttls(context=context)
            smtp.ehlo()
        if username is not None and password is not None:
            if security == "none":
                log.warning("smtp auth without tls", host=host)
            smtp.login(username.get_secret_value(), password.get_secret_value())
    except BaseException:
        _close(smtp)
        raise
    return smtp


def _close(smtp: smtplib.SMTP) -> None:
    # closing after a failed handshake: the handshake's error is the one worth reporting
    with contextlib.suppress(OSError):
        smtp.close()


__all__ = ["Security", "WatchedSMTP", "WatchedSMTPSSL", "Watchdog", "connect"]
