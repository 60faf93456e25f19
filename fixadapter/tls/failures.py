"""Why a TLS connection to the broker failed, in words a desk engineer can act on.

Each failure gets a short `reason` (a bounded metric label), the library's own words, and advice. The
classification reads OpenSSL's verify code where there is one, because the message text varies
between OpenSSL versions.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

# OpenSSL X509_V_ERR_* codes.
_NOT_YET_VALID = 9
_EXPIRED = 10
_UNKNOWN_CA = frozenset({2, 18, 19, 20, 21})
_NAME_MISMATCH = frozenset({62, 64})
_NOT_TLS = (
    "WRONG_VERSION_NUMBER",
    "HTTP_REQUEST",
    "UNKNOWN_PROTOCOL",
    "RECORD_LAYER_FAILURE",
    "PACKET_LENGTH",
)


@dataclass(frozen=True)
class TlsFailure:
    reason: str
    detail: str
    advice: str

    def describe(self, where: str) -> str:
        return f"TLS to {where} failed: {self.reason.replace('_', ' ')} ({self.detail}); {self.advice}"


@dataclass(frozen=True)
class Attempt:
    """What was tried, for the advice: the broker's host and port and the trust settings used."""

    host: str
    port: int
    ca_file: Path | None
    timeout: float


def classify_connect(exc: BaseException, attempt: Attempt) -> TlsFailure:
    """The TCP connection (before TLS) failed."""
    where = f"{attempt.host}:{attempt.port}"
    if isinstance(exc, TimeoutError):
        return TlsFailure(
            "connect_timeout",
            f"no TCP answer within {attempt.timeout:g}s",
            f"check that {where} is reachable from this machine (firewall, VPN); retrying with backoff",
        )
    if isinstance(exc, socket.gaierror | UnicodeError):  # UnicodeError: a malformed name (empty label...)
        return TlsFailure(
            "dns",
            getattr(exc, "strerror", None) or str(exc),
            f"check the host name {attempt.host!r} on the broker's FIX API credentials form",
        )
    detail = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return TlsFailure(
        "connect_failed", detail, f"check host and port ({where}) and the network; retrying with backoff"
    )


def classify_handshake(exc: BaseException, attempt: Attempt) -> TlsFailure:
    """The TCP connection was made, the TLS handshake failed."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _certificate(exc, attempt)
    if isinstance(exc, TimeoutError | ConnectionAbortedError):
        return TlsFailure(
            "handshake_timeout",
            f"no TLS handshake within {attempt.timeout:g}s",
            "check that the port is the TLS port (cTrader: 5211 QUOTE, 5212 TRADE) "
            "and that nothing on the way intercepts TLS",
        )
    if isinstance(exc, ssl.SSLError) and any(mark in str(exc).upper() for mark in _NOT_TLS):
        return TlsFailure(
            "not_tls",
            exc.reason or str(exc),
            f"port {attempt.port} did not answer in TLS: cTrader's TLS ports are 5211 (QUOTE) and "
            "5212 (TRADE), 5201/5202 are plain text",
        )
    if isinstance(exc, ssl.SSLEOFError | ConnectionResetError | EOFError | BrokenPipeError):
        return TlsFailure(
            "handshake_closed",
            "the server closed the connection during the TLS handshake",
            "check that the port is the TLS port and that the server accepts TLS 1.2 or newer",
        )
    if isinstance(exc, ssl.SSLError):
        return TlsFailure(
            "tls_error",
            exc.reason or str(exc),
            "check the port and the broker's TLS requirements (this adapter offers TLS 1.2 and 1.3)",
        )
    return classify_connect(exc, attempt)


def _certificate(exc: ssl.SSLCertVerificationError, attempt: Attempt) -> TlsFailure:
    detail = exc.verify_message or str(exc)
    code = exc.verify_code
    if code in _UNKNOWN_CA:
        trust = (
            f"the CA file {attempt.ca_file} pinned in account.tls_ca_file"
            if attempt.ca_file
            else "this machine's trust store"
        )
        return TlsFailure(
            "unknown_ca",
            detail,
            f"the server's certificate is not signed by a CA in {trust}; if the broker uses a private CA "
            "set account.tls_ca_file to its CA bundle (verification is never turned off)",
        )
    if code in _NAME_MISMATCH:
        return TlsFailure(
            "wrong_hostname",
            detail,
            f"the certificate is not issued for {attempt.host!r}: connect by the host name on the "
            "broker's FIX API credentials form, not an IP address or an alias",
        )
    if code == _EXPIRED:
        return TlsFailure(
            "expired_certificate",
            detail,
            "the server's certificate has expired (or this machine's clock is wrong): check the clock, "
            "then tell the broker",
        )
    if code == _NOT_YET_VALID:
        return TlsFailure(
            "certificate_not_yet_valid",
            detail,
            "the certificate's validity starts in the future: check this machine's clock",
        )
    return TlsFailure(
        "certificate_rejected", detail, "the server's certificate failed verification; tell the broker"
    )
