"""What a ``queue()`` call may ask for, checked once for every World (QN-1, QO-1, QO-2).

Each World used to check the options of ``queue()`` its own way, so the same
call could be refused by one World and quietly bent by another (a negative
delay clamped to zero, an empty idempotency key taken as a key). A World calls
:func:`check_queue_options` first and stores what it returns; then every World
refuses the same calls with the same :class:`~worlds_sdk.errors.ValidationError`,
and every message names the deployment it is for.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ValidationError
from .queue_names import check_queue_name


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueOptions:
    """The options of one accepted ``queue()`` call, in the form a World stores them."""

    deployment_id: str
    """The caller's ``deployment_id``, else the World's own (QO-2); handlers see it in ``MessageMeta``."""
    idempotency_key: str | None
    delay_seconds: float
    """Finite and not negative; 0 when the caller gave none."""
    headers: Mapping[str, str] = field(default_factory=dict)


def check_queue_options(
    queue_name: str,
    *,
    deployment_id: str | None,
    idempotency_key: str | None,
    delay_seconds: float | None,
    headers: Mapping[str, str] | None,
    world_deployment_id: str,
) -> QueueOptions:
    """Check a ``queue()`` call; raise :class:`ValidationError` naming the first bad field.

    Refused: a queue name outside ``__[ns_]wkf_(workflow|step)_<name>``; a
    ``delay_seconds`` that is negative, NaN, infinite, a bool or not a number;
    an empty or non-string ``idempotency_key`` or ``deployment_id`` (an empty
    key would silently mean "no key" to one World and "the key ''" to another);
    headers that do not map strings to strings.
    """
    check_queue_name(queue_name)
    return QueueOptions(
        deployment_id=world_deployment_id if deployment_id is None else _non_empty(deployment_id, "deployment_id"),
        idempotency_key=None if idempotency_key is None else _non_empty(idempotency_key, "idempotency_key"),
        delay_seconds=0.0 if delay_seconds is None else _seconds(delay_seconds, "delay_seconds"),
        headers=_headers(headers),
    )


def _non_empty(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValidationError("must be a non-empty string", field=name)
    return value


def _seconds(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValidationError(f"must be a finite, non-negative number of seconds, got {value!r}", field=name)
    return float(value)


def _headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    if headers is None:
        return {}
    if not isinstance(headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise ValidationError("must map strings to strings", field="headers")
    return dict(headers)
