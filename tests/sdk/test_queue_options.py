"""``check_queue_options``: the one check every World runs on ``queue()`` (QN-1, QO-1, QO-2)."""

from __future__ import annotations

from typing import Any

import pytest

from worlds_sdk.errors import ValidationError
from worlds_sdk.queue_options import QueueOptions, check_queue_options

QUEUE = "__wkf_step_orders/charge"
NONE: dict[str, Any] = {"deployment_id": None, "idempotency_key": None, "delay_seconds": None, "headers": None}


def check(queue_name: str = QUEUE, **options: Any) -> QueueOptions:
    return check_queue_options(queue_name, **{**NONE, **options}, world_deployment_id="dpl_world")


def test_defaults_are_the_worlds_deployment_no_key_no_delay_no_headers() -> None:
    assert check() == QueueOptions(deployment_id="dpl_world", idempotency_key=None, delay_seconds=0.0, headers={})


def test_given_options_are_kept_and_the_delay_is_a_float() -> None:
    options = check(deployment_id="dpl_old", idempotency_key="k", delay_seconds=2, headers={"a": "b"})

    assert options == QueueOptions(deployment_id="dpl_old", idempotency_key="k", delay_seconds=2.0, headers={"a": "b"})
    assert type(options.delay_seconds) is float


@pytest.mark.parametrize(
    ("queue_name", "options", "field"),
    [
        ("orders", {}, "queue_name"),
        (QUEUE, {"delay_seconds": -1}, "delay_seconds"),
        (QUEUE, {"delay_seconds": -1e-9}, "delay_seconds"),
        (QUEUE, {"delay_seconds": float("nan")}, "delay_seconds"),
        (QUEUE, {"delay_seconds": float("-inf")}, "delay_seconds"),
        (QUEUE, {"delay_seconds": False}, "delay_seconds"),
        (QUEUE, {"delay_seconds": "1"}, "delay_seconds"),
        (QUEUE, {"idempotency_key": ""}, "idempotency_key"),
        (QUEUE, {"idempotency_key": b"k"}, "idempotency_key"),
        (QUEUE, {"deployment_id": ""}, "deployment_id"),
        (QUEUE, {"headers": {"a": 1}}, "headers"),
        (QUEUE, {"headers": [("a", "b")]}, "headers"),
    ],
)
def test_bad_options_are_validation_errors_naming_the_field(
    queue_name: str, options: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        check(queue_name, **options)

    assert caught.value.field == field
