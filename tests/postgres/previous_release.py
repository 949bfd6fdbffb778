"""What the code of the previous release (migrations 1-5) sends: query ``create_event`` on ``create_event_v1``.

Migration 0006 added ``create_event_v2`` beside ``create_event_v1`` and this release's
query calls v2; v1 stays for processes of the previous release during a rolling deploy
(``-- min-code-version: 1``). The tests that play that release (a schema before 0006,
the differential test of v1 against ``rules.decide``) and the before/after benchmark
(``benchmarks/pg_events_breakdown.py --levels 5 6``) send this query, as it shipped.
"""

from __future__ import annotations

from reference_worlds.postgres.rows import ENTITY_COLUMNS, EVENT_COLUMNS

_QUERY = """SELECT {columns}
FROM (
    SELECT o_events[cardinality(o_events)] AS e, o_{entity} AS x
    FROM create_event_v1(%(run_id)s, %(event_type)s, %(correlation_id)s, %(data)s::json,
                         %(spec_version)s, %(world_spec_version)s)
    OFFSET 0
) AS f"""


def create_event_v1_query(entity: str) -> str:
    """The previous release's query ``create_event`` for the ``entity`` kind; same columns as this release's."""
    columns = [f"(e).{c}" for c in EVENT_COLUMNS] + [f"(x).{c}" for c in ENTITY_COLUMNS[entity]]
    return _QUERY.replace("{columns}", ", ".join(columns)).replace("{entity}", entity)
