-- Named queries of the Postgres World, loaded once by queries.py.
-- Each starts with "-- name: <name>". Lists are built by pages.py from the
-- *_page bases below plus keyset conditions, so each filter can use its index.

-- Storage --------------------------------------------------------------------

-- name: create_event
SELECT * FROM create_event_v1(%(run_id)s, %(event_type)s, %(correlation_id)s, %(data)s::json,
                              %(spec_version)s, %(world_spec_version)s);

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

-- name: claim
SELECT * FROM claim_v1(%(prefixes)s, %(lease_seconds)s, %(limit)s);

-- name: extend_lease
UPDATE messages SET visible_at = clock_timestamp() + make_interval(secs => %(seconds)s)
WHERE message_id = %(message_id)s AND claim_id = %(claim_id)s
RETURNING message_id;

-- name: ack
DELETE FROM messages WHERE message_id = %(message_id)s AND claim_id = %(claim_id)s
RETURNING message_id;

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
