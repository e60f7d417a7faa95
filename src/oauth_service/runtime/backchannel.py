"""Delivery of back-channel logouts (OpenID Connect Back-Channel Logout 1.0 §2.5, §2.8) from the outbox.

A pass claims the rows that are due (``db.backchannel_outbox``: once per row across replicas), mints a logout
token for each and POSTs it as ``logout_token=<jwt>`` (``application/x-www-form-urlencoded``) through the SSRF
guard (``outbound.http``). 200 or 204 is delivered and the row goes. Anything else, a timeout or a failed
connection is retried with exponential backoff until ``backchannel_logout_max_attempts`` attempts, then given
up. A URL the guard refuses, or a client that no longer has a ``backchannel_logout_uri``, is given up at once:
trying again would change nothing; so is an unexpected exception (logged once, by type and place). Every attempt ends in an audit event (``logout.backchannel``: client,
outcome, attempt, never the token) and the ``oauth_backchannel_logout_total`` metric.

The background loop (``runtime.background``) runs a pass at start-up (rows left by a restart), whenever a
request sets ``runtime.backchannel_due`` after committing new rows, and every ``POLL_INTERVAL`` seconds for
retries and for rows other processes (the CLI) enqueued. The user's request never waits for a delivery.
"""

import asyncio
import logging
import math
import traceback
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import PurePath
from typing import Final, Literal

import httpx

from oauth_service.db.backchannel_outbox import (
    ClaimedLogout,
    claim_due,
    finish,
    reschedule,
)
from oauth_service.observability.logs import audit
from oauth_service.observability.metrics import record_backchannel_logout
from oauth_service.oidc.logout_tokens import LogoutTokenMinter
from oauth_service.outbound.http import OutboundRefusedError, post_form
from oauth_service.runtime import Runtime

log = logging.getLogger("oauth_service.backchannel")

Outcome = Literal["delivered", "retry", "failed"]

POLL_INTERVAL: Final = 30.0
BATCH_SIZE: Final = 50
# Deliveries in flight at once within a pass: one slow receiver must not hold up the others.
CONCURRENCY: Final = 10
# The wait before attempt n+1 is RETRY_BASE * 2**(n-1), at most RETRY_MAX.
RETRY_BASE: Final = timedelta(seconds=2)
RETRY_MAX: Final = timedelta(minutes=10)
# A claimed row is not due again before its delivery has certainly ended (then it is retried).
LEASE_MARGIN: Final = timedelta(seconds=30)
# A pass sends its batch in waves of CONCURRENCY: the last wave may start only after the others timed out.
_WAVES: Final = math.ceil(BATCH_SIZE / CONCURRENCY)
_DELIVERED_STATUSES = frozenset({200, 204})


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What became of one claimed row."""

    client_id: str
    outcome: Outcome
    attempt: int
    error: str | None = None


def lease_for(timeout: float) -> timedelta:
    """How long a pass holds the rows it claimed: until its last wave of deliveries has certainly ended.

    Shorter, and another replica could claim a row still waiting for its turn and send a second logout token.
    """
    return timedelta(seconds=timeout) * _WAVES + LEASE_MARGIN


def retry_delay(attempt: int) -> timedelta:
    """The wait after failed attempt number ``attempt`` (1-based)."""
    delay: timedelta = RETRY_BASE * (2 ** (attempt - 1))
    return min(delay, RETRY_MAX)


async def _attempt(
    runtime: Runtime, http: httpx.AsyncClient, row: ClaimedLogout
) -> tuple[bool, str | None]:
    """POST one logout token; return (retry may help, error), error None when delivered."""
    client = await runtime.stores.clients.get(row.client_id)
    if client is None or client.backchannel_logout_uri is None:
        return False, "the client has no backchannel_logout_uri any more"
    settings = runtime.settings
    minter = LogoutTokenMinter(
        lambda: runtime.keys, issuer=settings.issuer, clock=runtime.clock
    )
    token = minter.mint(client.client_id, subject=row.subject, sid=row.sid)
    try:
        status = await post_form(
            http,
            client.backchannel_logout_uri,
            {"logout_token": token},
            deadline=settings.backchannel_logout_timeout,
            allow_private=settings.outbound_allow_private_networks,
        )
    except OutboundRefusedError as refused:
        return False, str(refused)
    except TimeoutError:
        return True, f"no answer within {settings.backchannel_logout_timeout:g} s"
    except httpx.HTTPError as exc:
        return True, f"request failed ({type(exc).__name__})"
    except Exception as exc:
        # One bad row must never stop a pass, and a bug here would repeat on every retry: give the row up. The message may quote the request (the
        # token), so only the type and the place are logged.
        where = traceback.extract_tb(exc.__traceback__)[-1]
        log.error(
            "back-channel logout to %s failed unexpectedly: %s at %s:%d",
            row.client_id,
            type(exc).__name__,
            PurePath(where.filename).name,
            where.lineno or 0,
        )
        return False, f"unexpected error ({type(exc).__name__})"
    if status in _DELIVERED_STATUSES:
        return False, None
    return True, f"answered HTTP {status}"


async def _deliver(
    runtime: Runtime, http: httpx.AsyncClient, row: ClaimedLogout
) -> DeliveryResult:
    retryable, error = await _attempt(runtime, http, row)
    now = runtime.clock()
    if error is None:
        outcome: Outcome = "delivered"
        await finish(runtime.engine, row.id)
    elif retryable and row.attempt < runtime.settings.backchannel_logout_max_attempts:
        outcome = "retry"
        await reschedule(
            runtime.engine, row.id, at=now + retry_delay(row.attempt), error=error
        )
    else:
        outcome = "failed"
        await finish(runtime.engine, row.id)
    record_backchannel_logout(outcome)
    fields = {"error": error} if error is not None else {}
    audit(
        "logout.backchannel",
        client_id=row.client_id,
        outcome=outcome,
        attempt=row.attempt,
        reason=row.reason,
        **fields,
    )
    return DeliveryResult(row.client_id, outcome, row.attempt, error)


async def deliver_due(
    runtime: Runtime, http: httpx.AsyncClient, *, now: datetime | None = None
) -> list[DeliveryResult]:
    """Run one pass: claim the rows due at ``now`` (default: the runtime's clock) and deliver them."""
    now = now or runtime.clock()
    lease = lease_for(runtime.settings.backchannel_logout_timeout)
    rows = await claim_due(
        runtime.engine, now=now, lease_until=now + lease, limit=BATCH_SIZE
    )
    if not rows:
        return []
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(row: ClaimedLogout) -> DeliveryResult:
        async with gate:
            return await _deliver(runtime, http, row)

    return list(await asyncio.gather(*(one(row) for row in rows)))


async def deliver_all_due(runtime: Runtime, http: httpx.AsyncClient) -> None:
    """Run passes until one claims less than a full batch."""
    while len(await deliver_due(runtime, http)) == BATCH_SIZE:
        pass
