"""A real SMTP server on loopback (aiosmtpd) that records what it accepts.

``LoopbackSMTP`` binds 127.0.0.1 on a port the OS picks (aiosmtpd's Controller wants a fixed
port, so the socket is bound here and handed to asyncio). It can offer STARTTLS, implicit TLS
and AUTH (PLAIN/LOGIN, only after TLS, as aiosmtpd requires by default), and can answer the
next transactions with an SMTP error code to exercise failure paths.

``self_signed_certificate`` makes a throw-away certificate for 127.0.0.1: with the
``cryptography`` package when it is installed, else with the ``openssl`` command; the test is
skipped (with the reason) when neither is there.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import ipaddress
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Awaitable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass(frozen=True)
class Received:
    """One accepted message: envelope, the raw bytes, and who authenticated (if anyone)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    login: str | None
    tls: bool

    def parsed(self) -> EmailMessage:
        message = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        return message


class RecordingHandler:
    """aiosmtpd handler: keeps every message; ``reject`` codes answer the next DATA commands;
    ``delay`` seconds pass before each message is accepted (a slow server); ``drop_after``
    messages are kept and then the connection is cut before the reply (the server accepted
    them, the client cannot know)."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.reject: list[str] = []  # e.g. "451 4.3.0 try again later"
        self.delay = 0.0
        self.drop_after = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        reply = self._record(session, envelope)
        with self.lock:
            drop = self.drop_after > 0 and reply.startswith("250")
            if drop:
                self.drop_after -= 1
        if drop and server.transport is not None:
            server.transport.abort()
        return reply

    def _record(self, session: Session, envelope: Envelope) -> str:
        with self.lock:
            if self.reject:
                return self.reject.pop(0)
            data = session.auth_data
            login = data.login.decode() if session.authenticated and data is not None else None
            content = envelope.original_content or envelope.content or b""
            self.messages.append(
                Received(
                    mail_from=str(envelope.mail_from),
                    rcpt_tos=tuple(envelope.rcpt_tos),
                    data=content if isinstance(content, bytes) else content.encode(),
                    login=login,
                    tls=session.ssl is not None,
                )
            )
        return "250 2.0.0 Message accepted for delivery"


class LoopbackSMTP(Controller):
    """An aiosmtpd controller on 127.0.0.1 and a free port (``.port`` once constructed)."""

    def __init__(
        self,
        *,
        starttls: ssl.SSLContext | None = None,
        implicit_tls: ssl.SSLContext | None = None,
        credentials: tuple[str, str] | None = None,
        data_size_limit: int = 64 * 1024 * 1024,
    ) -> None:
        self.handler = RecordingHandler()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        port = self._sock.getsockname()[1]
        self.credentials = credentials
        kwargs: dict[str, Any] = {"data_size_limit": data_size_limit}
        if starttls is not None:
            kwargs["tls_context"] = starttls
        if credentials is not None:
            kwargs["authenticator"] = self._authenticate
            kwargs["auth_required"] = True
        super().__init__(
            self.handler,
            hostname="127.0.0.1",
            port=port,
            ssl_context=implicit_tls,
            **kwargs,
        )

    @property
    def messages(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.messages)

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        return self.loop.create_server(self._factory_invoker, sock=self._sock, ssl=self.ssl_context)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and self.credentials is not None
            and (auth_data.login.decode(), auth_data.password.decode()) == self.credentials
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data)


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """(certificate, key) PEM files for CN=localhost, SAN 127.0.0.1 and localhost, 1 day."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    try:
        _with_cryptography(cert, key)
    except ImportError:
        openssl = shutil.which("openssl")
        if openssl is None:
            pytest.skip("neither the cryptography package nor the openssl command is available")
        subprocess.run(
            [
                openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                "-keyout", str(key), "-out", str(cert),
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
    return cert, key


def _with_cryptography(cert_path: Path, key_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def client_context(cert: Path) -> ssl.SSLContext:
    """A client context that trusts exactly the test certificate (verification stays on)."""
    return ssl.create_default_context(cafile=str(cert))


class TarpitSMTP:
    """A misbehaving SMTP server on 127.0.0.1: it accepts connections and sends its banner
    one byte every ``interval`` seconds (a tarpit), and never reads what the client says.

    Every connection gets its own thread; ``close()`` ends them all."""

    BANNER = b"220 tarpit.example.org ESMTP slow\r\n"

    def __init__(self, *, interval: float = 1.0) -> None:
        self.interval = interval
        self.connections = 0
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._serve, daemon=True)
        self._accept.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(target=self._drip, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _drip(self, conn: socket.socket) -> None:
        with conn:
            for byte in self.BANNER:
                if self._stop.wait(self.interval):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:  # the client gave up
                    return
            self._stop.wait()  # banner sent; then nothing, for ever

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        self._accept.join(timeout=5)
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> TarpitSMTP:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
