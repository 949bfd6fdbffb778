-- Named queries of the Postgres World, loaded once by queries.py.
-- Each starts with "-- name: <name>". Lists are built by pages.py from the
-- *_page bases below plus keyset conditions, so each filter can use its index.

-- Storage --------------------------------------------------------------------

-- create_event_v1's results: the last appended event and the one entity kind the event type can
-- affect ({entity}: run, step, hook or wait), as plain columns ({columns}: rows.EVENT_COLUMNS of e,
-- then rows.ENTITY_COLUMNS[entity] of x; filled in by storage.create_event_query). The driver
-- loads plain columns in C and composites in Python, and the other kinds are always NULL: both
-- cost client time (docs/performance.md). OFFSET 0 keeps the subquery whole: flattened, the
-- server took the last event out of the array once per column.
-- name: create_event
SELECT {columns}
FROM (
    SELECT o_events[cardinality(o_events)] AS e, o_{entity} AS x
    FROM create_event_v1(%(run_id)s, %(event_type)s, %(correlation_id)s, %(data)s::json,
                         %(spec_version)s, %(world_spec_version)s)
    OFFSET 0
) AS f;

-- name: get_run
SELECT * FROM runs WHERE run_id = %(run_id)s;

-- name: get_step
SELECT * FROM steps WHERE run_id = %(run_id)s AND step_id = %(step_id)s;

-- name: find_step
SELECT * FROM steps WHERE step_id = %(step_id)s ORDER BY seq LIMIT 1;

-- name: get_event
SELECT * FROM events WHERE run_id = %(run_id)s AND event_id = %(event_id)s;

-- name: get_hook
SELECT * FROM hooks WHERE hook_id = %(hook_id)s AND disposed_at IS NULL;

-- name: get_hook_by_token
SELECT * FROM hooks WHERE token = %(token)s AND disposed_at IS NULL;

-- name: runs_page
SELECT * FROM runs

-- name: steps_page
SELECT * FROM steps

-- name: events_page
SELECT * FROM events

-- name: hooks_page
SELECT * FROM hooks

-- Queue ----------------------------------------------------------------------

-- name: enqueue
SELECT enqueue_v1(%(message_id)s, %(queue_name)s, %(body)s::json, %(headers)s::json, %(deployment_id)s,
                  %(idempotency_key)s, %(delay_seconds)s) AS message_id;

-- A hand-off (worlds_sdk.consumer.Consumer.enqueue): the message inserted already claimed,
-- exactly as claim_v1 would leave it; nothing if its idempotency key is taken (then: enqueue).
-- name: enqueue_claimed
INSERT INTO messages (message_id, queue_name, body, headers, deployment_id, idempotency_key, attempt, claim_id,
                      visible_at, created_at)
VALUES (%(message_id)s, %(queue_name)s, %(body)s::json, %(headers)s::json, %(deployment_id)s, %(idempotency_key)s,
        1, mint_id_v1('msg', clock_timestamp(), NULL), clock_timestamp() + make_interval(secs => %(lease_seconds)s),
        clock_timestamp())
ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING *;

-- Enqueues grouped while one was in flight (queue.py): one INSERT, each row as enqueue_v1 or
-- enqueue_claimed would store it; a row whose idempotency key is taken is left out (then: one
-- by one). One NOTIFY at commit if any row is for the consumers (identical ones are merged).
-- name: enqueue_many
WITH inserted AS (
    INSERT INTO messages (message_id, queue_name, body, headers, deployment_id, idempotency_key, attempt, claim_id,
                          visible_at, created_at)
    SELECT m.message_id, m.queue_name, m.body::json, m.headers::json, m.deployment_id, m.idempotency_key,
           (m.lease_seconds IS NOT NULL)::integer,
           CASE WHEN m.lease_seconds IS NOT NULL THEN mint_id_v1('msg', clock_timestamp(), NULL) END,
           clock_timestamp() + make_interval(secs => coalesce(m.lease_seconds, greatest(m.delay_seconds, 0))),
           clock_timestamp()
    FROM unnest(%(message_ids)s::text[], %(queue_names)s::text[], %(bodies)s::text[], %(headers)s::text[],
                %(deployment_ids)s::text[], %(idempotency_keys)s::text[], %(delays)s::float8[], %(leases)s::float8[])
         WITH ORDINALITY AS m(message_id, queue_name, body, headers, deployment_id, idempotency_key, delay_seconds,
                              lease_seconds, ord)
    ORDER BY m.ord
    ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING *
)
SELECT inserted.*,
       CASE WHEN inserted.claim_id IS NULL THEN pg_notify(current_schema() || '.queue', '') IS NULL END AS woken
FROM inserted;

-- name: claim
SELECT * FROM claim_v1(%(prefixes)s, %(lease_seconds)s, %(limit)s);

-- name: extend_lease
UPDATE messages SET visible_at = clock_timestamp() + make_interval(secs => %(seconds)s)
WHERE message_id = %(message_id)s AND claim_id = %(claim_id)s
RETURNING message_id;

-- An ack commits without waiting for its WAL flush (synchronous_commit off for this statement's
-- own transaction only): lost in a server crash, it leaves the message leased, redelivered
-- after its lease, as if its handler had died before acking (at-least-once, Q-1). The next
-- synchronous commit on the server (an enqueue, a claim, an event) flushes it anyway.
-- name: ack
WITH no_flush_wait AS (SELECT set_config('synchronous_commit', 'off', true))
DELETE FROM messages AS m
USING unnest(%(message_ids)s::text[], %(claim_ids)s::text[]) AS a(message_id, claim_id), no_flush_wait
WHERE m.message_id = a.message_id AND m.claim_id = a.claim_id
RETURNING m.message_id, m.claim_id;

-- name: reschedule
UPDATE messages SET claim_id = NULL, visible_at = clock_timestamp() + make_interval(secs => %(seconds)s)
WHERE message_id = %(message_id)s AND claim_id = %(claim_id)s
RETURNING message_id;

-- name: fail
UPDATE messages SET claim_id = NULL, failures = failures + 1, last_error = %(error)s,
                    visible_at = clock_timestamp() + make_interval(secs => %(seconds)s)
WHERE message_id = %(message_id)s AND claim_id = %(claim_id)s
RETURNING message_id;

-- name: dead_letter
WITH gone AS (
    DELETE FROM messages WHERE message_id = %(message_id)s AND claim_id = %(claim_id)s RETURNING *
)
INSERT INTO dead_letters (message_id, queue_name, body, headers, deployment_id, idempotency_key, attempt,
                          failures, last_error, created_at, dead_at)
SELECT message_id, queue_name, body, headers, deployment_id, idempotency_key, attempt,
       failures + 1, %(error)s, created_at, clock_timestamp()
FROM gone
RETURNING message_id;

-- name: recover_runs
SELECT recover_runs_v1(%(queue_prefix)s) AS enqueued;

-- Streams --------------------------------------------------------------------

-- name: write_stream
SELECT write_stream_v1(%(name)s, %(run_id)s, %(chunks)s::bytea[]) AS tail_index;

-- name: close_stream
SELECT close_stream_v1(%(name)s, %(run_id)s);

-- One statement, so the chunks, the tail and the done flag come from one snapshot.
-- name: stream_slice
SELECT s.tail_index, s.done, c.idx, c.data
FROM streams AS s
LEFT JOIN LATERAL (
    SELECT idx, data FROM stream_chunks
    WHERE name = s.name AND idx >= %(start)s
    ORDER BY idx
    LIMIT %(limit)s
) AS c ON true
WHERE s.name = %(name)s
ORDER BY c.idx;

-- name: streams_of_run
SELECT name FROM streams WHERE run_id = %(run_id)s ORDER BY created_at, name;

-- Inspection (capability inspection, OP-1 to OP-4) -------------------------------

-- One snapshot: live messages by state at one instant, and the dead letters.
-- name: queue_stats
SELECT queue_name,
       sum(ready)::integer AS ready, sum(leased)::integer AS leased, sum(delayed)::integer AS delayed,
       max(ready_age) AS oldest_ready_seconds, coalesce(max(failures), 0) AS max_failures,
       sum(dead)::integer AS dead_letters,
       (array_agg(error ORDER BY dead_at DESC NULLS LAST, message_id DESC))[1] AS last_error
FROM (
    SELECT m.queue_name, m.message_id,
           (m.visible_at <= t.now)::integer AS ready,
           (m.visible_at > t.now AND m.claim_id IS NOT NULL)::integer AS leased,
           (m.visible_at > t.now AND m.claim_id IS NULL)::integer AS delayed,
           CASE WHEN m.visible_at <= t.now THEN extract(epoch FROM t.now - m.visible_at)::double precision END
               AS ready_age,
           m.failures, 0 AS dead, NULL::timestamptz AS dead_at, NULL::text AS error
    FROM messages AS m, (SELECT clock_timestamp() AS now) AS t
    UNION ALL
    SELECT queue_name, message_id, 0, 0, 0, NULL, NULL, 1, dead_at, coalesce(last_error, '') FROM dead_letters
) AS x
GROUP BY queue_name
ORDER BY queue_name COLLATE "C";

-- name: dead_letters
SELECT * FROM dead_letters ORDER BY dead_at, message_id LIMIT %(limit)s;

-- name: quarantine
WITH gone AS (
    DELETE FROM messages WHERE message_id = %(message_id)s RETURNING *
)
INSERT INTO dead_letters (message_id, queue_name, body, headers, deployment_id, idempotency_key, attempt,
                          failures, last_error, created_at, dead_at)
SELECT message_id, queue_name, body, headers, deployment_id, idempotency_key, attempt,
       failures, %(error)s, created_at, clock_timestamp()
FROM gone
RETURNING *;

-- Back to ready, same id; failures start again and the idempotency key is dropped
-- (it deduplicated the original enqueue; a requeue is an operator's explicit replay).
-- name: requeue
WITH back AS (
    DELETE FROM dead_letters WHERE %(all)s OR message_id = ANY(%(ids)s) RETURNING *
), moved AS (
    INSERT INTO messages (message_id, queue_name, body, headers, deployment_id, attempt, visible_at, created_at)
    SELECT message_id, queue_name, body, headers, deployment_id, attempt, clock_timestamp(), clock_timestamp()
    FROM back
    RETURNING message_id
)
SELECT (SELECT count(*) FROM moved)::integer AS requeued, pg_notify(current_schema() || '.queue', '')::text AS hint;

-- name: count_expired_runs
SELECT count(*)::integer AS expired FROM runs
WHERE status IN ('completed', 'failed', 'cancelled') AND completed_at < %(cutoff)s;

-- One statement, so a batch goes whole or not at all; a live run is never chosen,
-- and a run another transaction holds (an event being appended) is left for later.
-- name: delete_expired_runs
WITH doomed AS (
    SELECT run_id FROM runs
    WHERE status IN ('completed', 'failed', 'cancelled') AND completed_at < %(cutoff)s
    ORDER BY completed_at, run_id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), e AS (
    DELETE FROM events WHERE run_id IN (SELECT run_id FROM doomed)
), s AS (
    DELETE FROM steps WHERE run_id IN (SELECT run_id FROM doomed)
), h AS (
    DELETE FROM hooks WHERE run_id IN (SELECT run_id FROM doomed)
), w AS (
    DELETE FROM waits WHERE run_id IN (SELECT run_id FROM doomed)
), c AS (
    DELETE FROM stream_chunks WHERE name IN (SELECT name FROM streams WHERE run_id IN (SELECT run_id FROM doomed))
), st AS (
    DELETE FROM streams WHERE run_id IN (SELECT run_id FROM doomed)
), r AS (
    DELETE FROM runs WHERE run_id IN (SELECT run_id FROM doomed) RETURNING run_id
)
SELECT count(*)::integer AS deleted FROM r;
