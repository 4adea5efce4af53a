"""Injected failures: what a flaky Tiny and the proxies in front of it do to a client."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

FAULT_KINDS = ("5xx", "code35", "timeout", "malformed", "code99")
# The in-process transport sets this environ key; the app then signals a timeout fault with
# FAULT_HEADER instead of sleeping, and the transport raises httpx.ReadTimeout.
IN_PROCESS_KEY = "sandbox.in_process"
FAULT_HEADER = "X-Sandbox-Fault"


@dataclass(frozen=True)
class Faults:
    """Probability per call of each injected failure, drawn from an RNG seeded with `seed`."""

    p_5xx: float = 0.0
    p_code35: float = 0.0
    p_timeout: float = 0.0
    p_malformed: float = 0.0
    p_code99: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        probabilities = [getattr(self, f"p_{kind}") for kind in FAULT_KINDS]
        if any(not 0.0 <= p <= 1.0 for p in probabilities):
            raise ValueError("fault probabilities must be between 0 and 1")
        if sum(probabilities) > 1.0 + 1e-9:
            raise ValueError("fault probabilities must add up to at most 1")


class FaultInjector:
    """Draws at most one fault kind per call; one uniform draw keeps each kind at exactly its p."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self._rng = random.Random(faults.seed)
        self._lock = threading.Lock()

    def draw(self) -> tuple[str | None, random.Random]:
        """The fault to inject on this call (or None) and an RNG for its details."""
        with self._lock:
            u = self._rng.random()
            detail = random.Random(self._rng.getrandbits(64))
        upto = 0.0
        for kind in FAULT_KINDS:
            upto += getattr(self.faults, f"p_{kind}")
            if u < upto:
                return kind, detail
        return None, detail


_GATEWAY_PAGES = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
}


def server_error(rng: random.Random) -> tuple[int, bytes]:
    """An HTTP 5xx with the HTML page a proxy or PHP front end would send."""
    status = rng.choice(sorted(_GATEWAY_PAGES))
    title = f"{status} {_GATEWAY_PAGES[status]}"
    body = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    )
    return status, body.encode()


def malformed_body(rng: random.Random, good_body: bytes) -> bytes:
    """An HTTP-200 body a JSON parser rejects: truncated, PHP warning in front, or HTML."""
    choice = rng.randrange(3)
    if choice == 0 and len(good_body) > 2:
        return good_body[: rng.randrange(1, len(good_body) - 1)]
    if choice == 1:
        warning = (
            "<br />\n<b>Warning</b>:  mysqli_connect(): (HY000/2002): Connection timed out in "
            "<b>/var/www/api2/lib/db.php</b> on line <b>42</b><br />\n"
        )
        return warning.encode() + good_body
    return b"<html><body><h1>Erro</h1><p>Tente novamente mais tarde.</p></body></html>"
