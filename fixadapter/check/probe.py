"""TCP reachability and the TLS handshake of one host:port, said in words (no FIX, no Open API yet).

The TLS failures are classified as the FIX TLS forwarder classifies them (tls/failures.py: unknown CA,
wrong host name, expired certificate, not TLS...), so `check` and the daemon's log use the same words.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

from fixadapter.check.report import Report, Timer
from fixadapter.tls.failures import Attempt, classify_handshake

EXPIRY_WARNING_DAYS = 14
# A TLS failure's reason (tls/failures.py) in the words of a check line.
REASON_WORDS = {
    "unknown_ca": "certificate not trusted (signed by an unknown CA)",
    "wrong_hostname": "certificate issued for another host name",
    "expired_certificate": "certificate expired",
    "certificate_not_yet_valid": "certificate not yet valid",
    "certificate_rejected": "certificate rejected",
    "not_tls": "the port does not speak TLS",
    "handshake_timeout": "no TLS handshake",
    "handshake_closed": "closed during the TLS handshake",
}


@dataclass(frozen=True)
class Endpoint:
    """What to probe: `label` names the steps ("QUOTE", "Open API"), `ports_hint` helps with a wrong port."""

    label: str
    host: str
    port: int
    tls: bool
    ca_file: Path | None
    timeout: float
    ports_hint: str
    ca_setting: str = "account.tls_ca_file"  # the config key that pins a CA for this endpoint

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


async def probe(endpoint: Endpoint, report: Report, context: ssl.SSLContext | None) -> bool:
    """A TCP line, then (with TLS) a TLS line; True when everything probed worked."""
    timer = Timer()
    name = f"{endpoint.label} TCP"
    try:
        async with asyncio.timeout(endpoint.timeout):
            reader, writer = await asyncio.open_connection(endpoint.host, endpoint.port)
    except TimeoutError:
        report.failed(
            name,
            f"no answer from {endpoint.where} within {endpoint.timeout:g} s",
            f"check that this machine may reach {endpoint.where} (firewall, VPN, proxy) and the host name",
            timer.seconds,
        )
        return False
    except socket.gaierror as exc:
        report.failed(
            name,
            f"the host name {endpoint.host!r} does not resolve ({exc.strerror})",
            "copy the host name from the broker's credentials form; check this machine's DNS",
            timer.seconds,
        )
        return False
    except ConnectionRefusedError:
        report.failed(
            name,
            f"connection refused: nothing listens on {endpoint.where}",
            f"check the host and port ({endpoint.ports_hint}) and that the server is up",
            timer.seconds,
        )
        return False
    except OSError as exc:
        report.failed(
            name,
            f"cannot connect to {endpoint.where}: {exc.strerror or exc}",
            f"check the network between this machine and {endpoint.where}",
            timer.seconds,
        )
        return False
    report.ok(name, f"{endpoint.where} accepts connections", timer.seconds)
    if not endpoint.tls or context is None:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
        return True
    del reader
    return await _handshake(endpoint, writer, context, report)


async def _handshake(
    endpoint: Endpoint, writer: asyncio.StreamWriter, context: ssl.SSLContext, report: Report
) -> bool:
    timer = Timer()
    name = f"{endpoint.label} TLS"
    attempt = Attempt(endpoint.host, endpoint.port, endpoint.ca_file, endpoint.timeout)
    try:
        async with asyncio.timeout(endpoint.timeout):
            await writer.start_tls(context, server_hostname=endpoint.host)
    except (OSError, ssl.SSLError, TimeoutError, EOFError) as exc:
        writer.transport.abort()
        failure = classify_handshake(exc, attempt)
        words = REASON_WORDS.get(failure.reason, failure.reason.replace("_", " "))
        advice = failure.advice.replace("account.tls_ca_file", endpoint.ca_setting)
        report.failed(name, f"{words}: {failure.detail}", advice, timer.seconds)
        return False
    seconds = timer.seconds
    ssl_object = writer.get_extra_info("ssl_object")
    version = ssl_object.version() if ssl_object is not None else "TLS"
    expires = _expiry(writer.get_extra_info("peercert"))
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
        async with asyncio.timeout(1.0):
            await writer.wait_closed()
    if expires is None:
        report.ok(name, f"{version}, certificate verified for {endpoint.host}", seconds)
        return True
    when = time.strftime("%Y-%m-%d", time.gmtime(expires))
    days = (expires - time.time()) / 86400
    if days < EXPIRY_WARNING_DAYS:
        report.ok(
            name,
            f"{version}, certificate verified for {endpoint.host}, but it expires {when} "
            f"(in {max(days, 0):.0f} days): tell the broker",
            seconds,
        )
    else:
        report.ok(name, f"{version}, certificate verified for {endpoint.host}, valid until {when}", seconds)
    return True


def _expiry(peercert: object) -> float | None:
    if isinstance(peercert, dict) and isinstance(peercert.get("notAfter"), str):
        return float(ssl.cert_time_to_seconds(peercert["notAfter"]))
    return None
