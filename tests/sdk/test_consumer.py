"""The SDK's consumer pieces that need no store: the back-off policy and the settings check.

The delivery loop itself is tested against a real store in ``tests/local/test_queue.py``
(and against PostgreSQL in ``tests/postgres``).
"""

from __future__ import annotations

from typing import Any

import pytest

from worlds_sdk.consumer import Backoff, Consumer, Delivery


def test_backoff_doubles_from_its_initial_delay_up_to_its_cap() -> None:
    backoff = Backoff(initial=0.5, factor=2.0, maximum=3.0)
    assert [backoff.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert Backoff().delay(48) == 60.0


@pytest.mark.parametrize(
    "settings",
    [{"lease_seconds": 0}, {"poll_interval": -1}, {"concurrency": 0}, {"max_attempts": 0}, {"handler_timeout": 0}],
)
def test_a_consumer_refuses_settings_that_cannot_work(settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Consumer(None, **settings)  # type: ignore[arg-type]


def test_a_delivery_tells_the_handler_its_message_id_attempt_and_headers() -> None:
    delivery = Delivery(
        message_id="msg_1",
        queue_name="__wkf_step_x",
        message={},
        attempt=3,
        failures=1,
        claim_id="c",
        headers={"h": "v"},
    )
    meta = delivery.meta()
    assert (meta.message_id, meta.queue_name, meta.attempt, dict(meta.headers)) == (
        "msg_1",
        "__wkf_step_x",
        3,
        {"h": "v"},
    )
