-- The schema of the Postgres World as all migrations leave it (a snapshot).
--
-- tests/postgres/test_migrations.py proves that applying sql/migrations/* in order
-- yields exactly this (by comparing catalog dumps). Edit a migration, then update
-- this file to match; never apply it to a live database (use `worlds migrate`).

-- Text that is stored verbatim (event data, errors, execution contexts, messages)
-- is `json`, not `jsonb`: json keeps the codec's text exactly, including "\u0000"
-- escapes that jsonb rejects. Payload bytes extracted into entities are `bytea`.

CREATE TABLE schema_version (
    version          integer PRIMARY KEY,
    name             text NOT NULL,
    applied_at       timestamptz NOT NULL DEFAULT now(),
    min_code_version integer NOT NULL
);

-- Entities ---------------------------------------------------------------------
-- `seq` is the insertion order: the keyset of every list and its opaque cursor.

CREATE TABLE runs (
    run_id            text PRIMARY KEY,
    seq               bigserial NOT NULL UNIQUE,
    status            text NOT NULL
        CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    deployment_id     text NOT NULL,
    workflow_name     text NOT NULL,
    spec_version      integer NOT NULL,
    execution_context json,
    input             bytea,
    output            bytea,
    error             json,
    started_at        timestamptz,
    completed_at      timestamptz,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL
);
CREATE INDEX runs_workflow_name_idx ON runs (workflow_name, seq);
CREATE INDEX runs_status_idx ON runs (status, seq);

-- The key (run_id, seq) serves a run's log in order; seq alone is unique by construction
-- and nothing looks events up by it alone (0005: one index less per event).
CREATE TABLE events (
    seq            bigserial NOT NULL,
    run_id         text NOT NULL REFERENCES runs (run_id),
    event_id       text NOT NULL,
    event_type     text NOT NULL,
    correlation_id text,
    event_data     json,
    spec_version   integer NOT NULL,
    created_at     timestamptz NOT NULL,
    PRIMARY KEY (run_id, seq),
    UNIQUE (run_id, event_id)
);
CREATE INDEX events_correlation_idx ON events (correlation_id, seq) WHERE correlation_id IS NOT NULL;
-- Belt and braces under create_event_v1: the events that may happen at most once
-- per run and correlation id cannot be appended twice, whatever a bug elsewhere
-- does (upstream's Postgres world shipped duplicate step_created events).
CREATE UNIQUE INDEX events_once_idx ON events (
    run_id,
    coalesce(correlation_id, ''),
    (CASE WHEN event_type IN ('step_completed', 'step_failed') THEN 'step_finished'
          WHEN event_type IN ('run_completed', 'run_failed') THEN 'run_finished'
          ELSE event_type END)
) WHERE event_type IN ('run_created', 'run_started', 'run_completed', 'run_failed',
                       'step_created', 'step_completed', 'step_failed',
                       'hook_created', 'hook_disposed', 'wait_created', 'wait_completed');

-- A step's seq has no index of its own: steps are listed per run (steps_run_idx) and found
-- by id (steps_step_id_idx), never by seq alone (0005).
CREATE TABLE steps (
    run_id       text NOT NULL REFERENCES runs (run_id),
    step_id      text NOT NULL,
    seq          bigserial NOT NULL,
    step_name    text NOT NULL,
    status       text NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed')),
    input        bytea,
    output       bytea,
    error        json,
    attempt      integer NOT NULL DEFAULT 0,
    spec_version integer NOT NULL,
    started_at   timestamptz,
    completed_at timestamptz,
    retry_after  timestamptz,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (run_id, step_id)
);
CREATE INDEX steps_run_idx ON steps (run_id, seq);
CREATE INDEX steps_step_id_idx ON steps (step_id, seq);

-- A disposed hook stays as a tombstone (disposed_at set): a second dispose or a
-- re-sent creation is a conflict, not a miss. The token is unique among LIVE hooks
-- only, so disposal frees it at once (HK-1, HK-3).
CREATE TABLE hooks (
    hook_id      text PRIMARY KEY,
    seq          bigserial NOT NULL UNIQUE,
    run_id       text NOT NULL REFERENCES runs (run_id),
    token        text NOT NULL,
    metadata     bytea,
    is_webhook   boolean NOT NULL DEFAULT true,
    spec_version integer NOT NULL,
    created_at   timestamptz NOT NULL,
    disposed_at  timestamptz
);
CREATE UNIQUE INDEX hooks_live_token_idx ON hooks (token) WHERE disposed_at IS NULL;
CREATE INDEX hooks_run_idx ON hooks (run_id, seq);

CREATE TABLE waits (
    run_id       text NOT NULL REFERENCES runs (run_id),
    wait_id      text NOT NULL,
    status       text NOT NULL CHECK (status IN ('waiting', 'completed')),
    resume_at    timestamptz NOT NULL,
    completed_at timestamptz,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (run_id, wait_id)
);

-- Queue ------------------------------------------------------------------------
-- A message is claimable when visible_at <= now. A claim sets visible_at to the end
-- of its lease and a fresh claim_id; settling clears claim_id (or deletes the row).
-- A claim_id still set on a claimable message means its holder lost the lease.
-- Acked messages are deleted, so an idempotency key is unique while not acked (Q-3).

CREATE TABLE messages (
    message_id      text PRIMARY KEY,
    queue_name      text NOT NULL,
    body            json NOT NULL,
    headers         json NOT NULL,
    deployment_id   text,
    idempotency_key text,
    attempt         integer NOT NULL DEFAULT 0,
    failures        integer NOT NULL DEFAULT 0,
    visible_at      timestamptz NOT NULL,
    claim_id        text,
    last_error      text,
    created_at      timestamptz NOT NULL
);
CREATE UNIQUE INDEX messages_idempotency_idx ON messages (idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX messages_visible_idx ON messages (visible_at);

-- Messages that failed max_attempts times: kept for inspection, never dropped silently.
CREATE TABLE dead_letters (
    message_id      text PRIMARY KEY,
    queue_name      text NOT NULL,
    body            json NOT NULL,
    headers         json NOT NULL,
    deployment_id   text,
    idempotency_key text,
    attempt         integer NOT NULL,
    failures        integer NOT NULL,
    last_error      text,
    created_at      timestamptz NOT NULL,
    dead_at         timestamptz NOT NULL
);

-- Streams ----------------------------------------------------------------------
-- A stream is keyed by name; tail_index is its last chunk's index (-1 when empty).
-- Writers lock the stream row, so indexes are gapless and in write order.

CREATE TABLE streams (
    name       text PRIMARY KEY,
    run_id     text NOT NULL,
    tail_index integer NOT NULL DEFAULT -1,
    done       boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX streams_run_idx ON streams (run_id, created_at);

CREATE TABLE stream_chunks (
    name text NOT NULL REFERENCES streams (name),
    idx  integer NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (name, idx)
);

-- Helpers ----------------------------------------------------------------------
-- Helpers that create_event_v1 calls on every event and PostgreSQL cannot inline are
-- PL/pgSQL, whose plans live as long as the connection; a non-inlined LANGUAGE sql
-- function is planned again in every transaction, i.e. on every event (0004).

-- A JSON value, or SQL NULL for an absent key and for JSON null alike (Python's dict.get).
CREATE FUNCTION json_value_v1(p_value json) RETURNS json
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN json_typeof(p_value) = 'null' THEN NULL ELSE p_value END
$$;

-- Codec tags (worlds_sdk.codec): {"$b": base64} is bytes, {"$t": iso8601} a datetime.
CREATE FUNCTION codec_bytes_v1(p_value json) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT decode(p_value ->> '$b', 'base64')
$$;

CREATE FUNCTION codec_time_v1(p_value json) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT (p_value ->> '$t')::timestamptz
$$;

-- A dict the codec wrapped as {"$o": {...}} (its own keys start with "$"), unwrapped;
-- any other value as it is. User data may hold "$" keys (worlds_sdk.codec).
CREATE FUNCTION codec_object_v1(p_value json) RETURNS json
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF json_typeof(p_value) = 'object' AND p_value -> '$o' IS NOT NULL
       AND (SELECT count(*) FROM json_object_keys(p_value)) = 1 THEN
        RETURN p_value -> '$o';
    END IF;
    RETURN p_value;
END
$$;

-- A StructuredError {message, stack, code} from event data, as rules._error builds it.
CREATE FUNCTION structured_error_v1(p_data json, p_code json) RETURNS json
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN json_typeof(raw) = 'object' THEN
        json_build_object(
            'message', coalesce(json_value_v1(raw -> 'message'), '""'::json),
            'stack', coalesce(json_value_v1(p_data -> 'stack'), json_value_v1(raw -> 'stack')),
            'code', coalesce(json_value_v1(p_code), json_value_v1(raw -> 'code')))
    ELSE
        json_build_object(
            'message', coalesce(json_value_v1(raw), '""'::json),
            'stack', json_value_v1(p_data -> 'stack'),
            'code', json_value_v1(p_code))
    END
    FROM (SELECT codec_object_v1(p_data -> 'error') AS raw) AS e
$$;

-- A prefixed ULID (worlds_sdk.ids) for time p_at, strictly greater than p_after when
-- p_after is given and not older: ids then sort in append order within a run even
-- when the run is written from many hosts.
CREATE FUNCTION mint_id_v1(p_prefix text, p_at timestamptz, p_after text) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    alphabet constant text := '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
    ms bigint := floor(extract(epoch FROM p_at) * 1000);
    stamp text := '';
    rand text := '';
    pos integer;
    digit integer;
BEGIN
    FOR pos IN 1..10 LOOP
        stamp := substr(alphabet, (ms % 32)::integer + 1, 1) || stamp;
        ms := ms / 32;
    END LOOP;
    pos := length(p_prefix) + 2;
    IF p_after IS NOT NULL AND substr(p_after, pos, 10) COLLATE "C" >= stamp COLLATE "C" THEN
        stamp := substr(p_after, pos, 10);
        rand := substr(p_after, pos + 10, 16);
        FOR i IN REVERSE 16..1 LOOP
            digit := strpos(alphabet, substr(rand, i, 1));
            IF digit < 32 THEN
                rand := overlay(rand PLACING substr(alphabet, digit + 1, 1) FROM i FOR 1);
                EXIT;
            END IF;
            rand := overlay(rand PLACING '0' FROM i FOR 1);
        END LOOP;
    ELSE
        -- the first digit stays below 16, leaving room to increment (as ids.ulid does)
        rand := substr(alphabet, floor(random() * 16)::integer + 1, 1);
        FOR i IN 2..16 LOOP
            rand := rand || substr(alphabet, floor(random() * 32)::integer + 1, 1);
        END LOOP;
    END IF;
    RETURN p_prefix || '_' || stamp || rand;
END
$$;

-- events.create --------------------------------------------------------------------
-- One call = one atomic unit (EV-1): validate the transition, update the entity and
-- append the event(s), mirroring worlds_sdk.rules.decide rule for rule. The run row
-- is locked first (FOR UPDATE), so every write to one run is serialised and each
-- check below holds until commit; conditional updates and unique indexes back it up.
-- Errors are RAISEd with SQLSTATEs that errors.py maps to worlds_sdk.errors:
--   WWNFR/WWNFS/WWNFH/WWNFW not found (run/step/hook/wait), WW409 conflict,
--   WW410 run expired, WW425 too early (DETAIL: seconds), WWRNS run not supported
--   (DETAIL: "run_spec world_spec").
-- Returns the appended events (0, 1 or 2) and the affected entity. Unlike the other entry
-- points it does not pin its search_path (0004): the caller's, the World's schema, is used.
-- Its helpers are written inline (0005): a PL/pgSQL call costs about what its statement does.
CREATE FUNCTION create_event_v1(
    p_run_id text,
    p_event_type text,
    p_correlation_id text,
    p_data json,
    p_spec_version integer,
    p_world_spec_version integer,
    OUT o_events events[],
    OUT o_run runs,
    OUT o_step steps,
    OUT o_hook hooks,
    OUT o_wait waits
)
LANGUAGE plpgsql AS $$
DECLARE
    v_data json;
    v_spec integer := coalesce(p_spec_version, p_world_spec_version);
    v_now timestamptz;
    v_last_at timestamptz;
    v_last_id text;
    v_exists boolean;
    v_event events;
    v_hook hooks;
    v_holder text;
    v_terminal boolean;
    -- the event appended at the end: the request's, unless a branch below says otherwise
    v_type text := p_event_type;
    v_correlation_id text := p_correlation_id;
    v_event_data json := p_data;
BEGIN
    -- codec_object_v1, inline (one call less per event): the codec's {"$o": {...}} wrapper
    v_data := p_data;
    IF json_typeof(p_data) = 'object' AND p_data -> '$o' IS NOT NULL THEN
        IF (SELECT count(*) FROM json_object_keys(p_data)) = 1 THEN
            v_data := p_data -> '$o';
        END IF;
    END IF;
    v_data := coalesce(v_data, '{}'::json);
    o_events := '{}';

    SELECT * INTO o_run FROM runs WHERE run_id = p_run_id FOR UPDATE;
    v_exists := FOUND;
    IF v_exists THEN
        SELECT created_at, event_id INTO v_last_at, v_last_id
        FROM events WHERE run_id = p_run_id ORDER BY seq DESC LIMIT 1;
    END IF;
    -- created_at never decreases along a run's log, whatever the clocks of its writers
    v_now := greatest(clock_timestamp(), v_last_at);

    <<rules>>
    BEGIN
        IF p_event_type = 'run_created' THEN
            IF v_spec > p_world_spec_version THEN
                RAISE EXCEPTION USING ERRCODE = 'WWRNS', MESSAGE = 'run spec version too new',
                    DETAIL = v_spec || ' ' || p_world_spec_version;
            END IF;
            IF v_exists THEN
                RAISE EXCEPTION USING ERRCODE = 'WW409', MESSAGE = format('workflow run %L already exists', p_run_id);
            END IF;
            INSERT INTO runs (run_id, status, deployment_id, workflow_name, spec_version, execution_context, input,
                              created_at, updated_at)
            VALUES (p_run_id, 'pending', v_data ->> 'deployment_id', v_data ->> 'workflow_name', v_spec,
                    json_value_v1(v_data -> 'execution_context'), codec_bytes_v1(v_data -> 'input'), v_now, v_now)
            ON CONFLICT (run_id) DO NOTHING
            RETURNING * INTO o_run;
            IF NOT FOUND THEN  -- a concurrent run_created committed first (EV-4)
                RAISE EXCEPTION USING ERRCODE = 'WW409', MESSAGE = format('workflow run %L already exists', p_run_id);
            END IF;
            v_correlation_id := NULL;
            v_event_data := (SELECT json_object_agg(key, value) FROM json_each(v_data)
                             WHERE key IN ('deployment_id', 'workflow_name', 'input', 'execution_context'));
            EXIT rules;
        END IF;

        IF NOT v_exists THEN
            IF p_event_type = 'run_started' AND v_data -> 'deployment_id' IS NOT NULL
               AND v_data -> 'workflow_name' IS NOT NULL AND v_data -> 'input' IS NOT NULL THEN
                -- EV-6 resilient start: create the run and a synthetic run_created first
                IF v_spec > p_world_spec_version THEN
                    RAISE EXCEPTION USING ERRCODE = 'WWRNS', MESSAGE = 'run spec version too new',
                        DETAIL = v_spec || ' ' || p_world_spec_version;
                END IF;
                INSERT INTO runs (run_id, status, deployment_id, workflow_name, spec_version, execution_context, input,
                                  created_at, updated_at)
                VALUES (p_run_id, 'pending', v_data ->> 'deployment_id', v_data ->> 'workflow_name', v_spec,
                        json_value_v1(v_data -> 'execution_context'), codec_bytes_v1(v_data -> 'input'), v_now, v_now)
                ON CONFLICT (run_id) DO NOTHING
                RETURNING * INTO o_run;
                IF FOUND THEN
                    INSERT INTO events (run_id, event_id, event_type, correlation_id, event_data, spec_version, created_at)
                    VALUES (p_run_id, mint_id_v1('evnt', v_now, NULL), 'run_created', NULL,
                            (SELECT json_object_agg(key, value) FROM json_each(v_data)
                             WHERE key IN ('deployment_id', 'workflow_name', 'input', 'execution_context')),
                            v_spec, v_now)
                    RETURNING * INTO v_event;
                    o_events := ARRAY[v_event];
                    v_last_id := v_event.event_id;
                ELSE  -- a racing run_created won: start the run it created
                    SELECT * INTO o_run FROM runs WHERE run_id = p_run_id FOR UPDATE;
                    SELECT created_at, event_id INTO v_last_at, v_last_id
                    FROM events WHERE run_id = p_run_id ORDER BY seq DESC LIMIT 1;
                    v_now := greatest(clock_timestamp(), v_last_at);
                END IF;
            ELSE
                RAISE EXCEPTION USING ERRCODE = 'WWNFR', MESSAGE = format('workflow run %L does not exist', p_run_id);
            END IF;
        END IF;

        IF o_run.spec_version > p_world_spec_version THEN  -- EV-10
            RAISE EXCEPTION USING ERRCODE = 'WWRNS', MESSAGE = 'run spec version too new',
                DETAIL = o_run.spec_version || ' ' || p_world_spec_version;
        END IF;

        v_terminal := o_run.status IN ('completed', 'failed', 'cancelled');
        IF v_terminal THEN  -- EV-5, EV-7
            IF p_event_type = 'run_started' THEN
                RAISE EXCEPTION USING ERRCODE = 'WW410',
                    MESSAGE = format('workflow run %L is already %s', p_run_id, o_run.status);
            END IF;
            IF p_event_type IN ('run_completed', 'run_failed')
               OR (p_event_type = 'run_cancelled' AND o_run.status <> 'cancelled') THEN
                RAISE EXCEPTION USING ERRCODE = 'WW409',
                    MESSAGE = format('cannot transition run from terminal state %L', o_run.status);
            END IF;
            IF p_event_type IN ('step_created', 'hook_created', 'wait_created') THEN
                RAISE EXCEPTION USING ERRCODE = 'WW409',
                    MESSAGE = format('cannot create %ss on a %s run', split_part(p_event_type, '_', 1), o_run.status);
            END IF;
            IF p_event_type = 'run_cancelled' THEN  -- cancelling a cancelled run is idempotent
                EXIT rules;
            END IF;
        END IF;

        -- runs --------------------------------------------------------------------
        IF p_event_type = 'run_started' THEN
            IF o_run.status = 'running' THEN  -- EV-5: idempotent, nothing appended
                RETURN;
            END IF;
            UPDATE runs SET status = 'running', started_at = coalesce(started_at, v_now), updated_at = v_now
            WHERE run_id = p_run_id AND status = 'pending'
            RETURNING * INTO o_run;
        ELSIF p_event_type IN ('run_completed', 'run_failed', 'run_cancelled') THEN
            UPDATE runs SET
                status = CASE p_event_type WHEN 'run_completed' THEN 'completed'
                                           WHEN 'run_failed' THEN 'failed' ELSE 'cancelled' END,
                output = CASE WHEN p_event_type = 'run_completed'
                              THEN codec_bytes_v1(v_data -> 'output') ELSE output END,
                error = CASE WHEN p_event_type = 'run_failed'
                             THEN structured_error_v1(v_data, v_data -> 'error_code') ELSE error END,
                completed_at = v_now,
                updated_at = v_now
            WHERE run_id = p_run_id AND status IN ('pending', 'running')
            RETURNING * INTO o_run;
            IF NOT FOUND THEN  -- unreachable under the run lock; a guard, not a code path
                RAISE EXCEPTION USING ERRCODE = 'WW409', MESSAGE = format('run %L changed concurrently', p_run_id);
            END IF;
            -- HK-3: the run's hooks (tombstoned, token freed) and waits go with it
            UPDATE hooks SET disposed_at = v_now WHERE run_id = p_run_id AND disposed_at IS NULL;
            DELETE FROM waits WHERE run_id = p_run_id;

        -- steps (EV-8) ------------------------------------------------------------
        ELSIF p_event_type LIKE 'step\_%' THEN
            IF p_event_type = 'step_created' THEN
                INSERT INTO steps (run_id, step_id, step_name, status, input, attempt, spec_version,
                                   created_at, updated_at)
                VALUES (p_run_id, p_correlation_id, v_data ->> 'step_name', 'pending',
                        codec_bytes_v1(v_data -> 'input'), 0, v_spec, v_now, v_now)
                ON CONFLICT (run_id, step_id) DO NOTHING
                RETURNING * INTO o_step;
                IF NOT FOUND THEN
                    RAISE EXCEPTION USING ERRCODE = 'WW409', MESSAGE = format('step %L already exists', p_correlation_id);
                END IF;
            ELSE
                -- no FOR UPDATE: a step is written only under its run's lock, held since the start
                SELECT * INTO o_step FROM steps WHERE run_id = p_run_id AND step_id = p_correlation_id;
                IF NOT FOUND THEN
                    RAISE EXCEPTION USING ERRCODE = 'WWNFS',
                        MESSAGE = format('step %L does not exist in run %L', p_correlation_id, p_run_id);
                END IF;
                IF o_step.status IN ('completed', 'failed') THEN
                    RAISE EXCEPTION USING ERRCODE = 'WW409',
                        MESSAGE = format('step %L is already %s', p_correlation_id, o_step.status);
                END IF;
                IF v_terminal AND o_step.status <> 'running' AND p_event_type IN ('step_started', 'step_failed') THEN
                    RAISE EXCEPTION USING ERRCODE = 'WW410',
                        MESSAGE = format('run %L is %s; step %L is not running', p_run_id, o_run.status, p_correlation_id);
                END IF;
                IF p_event_type = 'step_started' AND o_step.retry_after > v_now THEN
                    RAISE EXCEPTION USING ERRCODE = 'WW425',
                        MESSAGE = format('step %L may not start before %s', p_correlation_id, o_step.retry_after),
                        DETAIL = extract(epoch FROM o_step.retry_after - v_now)::text;
                END IF;
                UPDATE steps SET
                    status = CASE p_event_type WHEN 'step_started' THEN 'running' WHEN 'step_completed' THEN 'completed'
                                               WHEN 'step_failed' THEN 'failed' ELSE 'pending' END,
                    attempt = attempt + (p_event_type = 'step_started')::integer,
                    started_at = CASE WHEN p_event_type = 'step_started'
                                      THEN coalesce(started_at, v_now) ELSE started_at END,
                    output = CASE WHEN p_event_type = 'step_completed'
                                  THEN codec_bytes_v1(v_data -> 'result') ELSE output END,
                    error = CASE WHEN p_event_type IN ('step_failed', 'step_retrying')
                                 THEN structured_error_v1(v_data, NULL) ELSE error END,
                    retry_after = CASE p_event_type WHEN 'step_started' THEN NULL
                                                    WHEN 'step_retrying' THEN codec_time_v1(v_data -> 'retry_after')
                                                    ELSE retry_after END,
                    completed_at = CASE WHEN p_event_type IN ('step_completed', 'step_failed')
                                        THEN v_now ELSE completed_at END,
                    updated_at = v_now
                WHERE run_id = p_run_id AND step_id = p_correlation_id AND status IN ('pending', 'running')
                RETURNING * INTO o_step;
                IF NOT FOUND THEN  -- unreachable under the run lock; a guard, not a code path
                    RAISE EXCEPTION USING ERRCODE = 'WW409', MESSAGE = format('step %L changed concurrently', p_correlation_id);
                END IF;
            END IF;
            o_run := NULL;

        -- hooks (HK-1..HK-4) ------------------------------------------------------
        ELSIF p_event_type = 'hook_created' THEN
            IF EXISTS (SELECT FROM hooks WHERE hook_id = p_correlation_id) THEN  -- live or tombstone
                RAISE EXCEPTION USING ERRCODE = 'WW409', MESSAGE = format('hook %L already created', p_correlation_id);
            END IF;
            LOOP
                -- the unique index on live tokens decides races between runs: the loser's
                -- insert waits for the winner's commit, then does nothing
                INSERT INTO hooks (hook_id, run_id, token, metadata, is_webhook, spec_version, created_at)
                VALUES (p_correlation_id, p_run_id, v_data ->> 'token', codec_bytes_v1(v_data -> 'metadata'),
                        coalesce((json_value_v1(v_data -> 'is_webhook') #>> '{}')::boolean, true), v_spec, v_now)
                ON CONFLICT DO NOTHING
                RETURNING * INTO o_hook;
                EXIT WHEN FOUND;
                IF EXISTS (SELECT FROM hooks WHERE hook_id = p_correlation_id) THEN
                    RAISE EXCEPTION USING ERRCODE = 'WW409',
                        MESSAGE = format('hook %L already created', p_correlation_id);
                END IF;
                SELECT run_id INTO v_holder FROM hooks WHERE token = v_data ->> 'token' AND disposed_at IS NULL;
                IF FOUND THEN  -- HK-2: the conflict is data, not an error
                    v_type := 'hook_conflict';
                    v_event_data := json_build_object('token', v_data -> 'token', 'conflicting_run_id', v_holder);
                    o_run := NULL;
                    EXIT rules;
                END IF;
                -- the holder was disposed in between: try again
            END LOOP;
            o_run := NULL;
        ELSIF p_event_type IN ('hook_received', 'hook_disposed') THEN
            -- EV-12: another run's hook, live or disposed, is a miss
            -- no FOR UPDATE: a hook is written only under its run's lock, held since the start
            SELECT * INTO v_hook FROM hooks WHERE hook_id = p_correlation_id AND run_id = p_run_id;
            IF NOT FOUND OR v_hook.disposed_at IS NOT NULL THEN
                IF FOUND AND p_event_type = 'hook_disposed' THEN
                    RAISE EXCEPTION USING ERRCODE = 'WW409',
                        MESSAGE = format('hook %L already disposed', p_correlation_id);
                END IF;
                RAISE EXCEPTION USING ERRCODE = 'WWNFH',
                    MESSAGE = format('hook %L does not exist or was disposed', p_correlation_id);
            END IF;
            IF p_event_type = 'hook_disposed' THEN
                UPDATE hooks SET disposed_at = v_now WHERE hook_id = p_correlation_id;
            ELSE
                o_hook := v_hook;
            END IF;
            o_run := NULL;

        -- waits (EV-9) --------------------------------------------------------------
        ELSIF p_event_type = 'wait_created' THEN
            INSERT INTO waits (run_id, wait_id, status, resume_at, created_at, updated_at)
            VALUES (p_run_id, p_correlation_id, 'waiting', codec_time_v1(v_data -> 'resume_at'), v_now, v_now)
            ON CONFLICT (run_id, wait_id) DO NOTHING
            RETURNING * INTO o_wait;
            IF NOT FOUND THEN
                RAISE EXCEPTION USING ERRCODE = 'WW409', MESSAGE = format('wait %L already exists', p_correlation_id);
            END IF;
            o_run := NULL;
        ELSIF p_event_type = 'wait_completed' THEN
            UPDATE waits SET status = 'completed', completed_at = v_now, updated_at = v_now
            WHERE run_id = p_run_id AND wait_id = p_correlation_id AND status = 'waiting'
            RETURNING * INTO o_wait;
            IF NOT FOUND THEN
                IF EXISTS (SELECT FROM waits WHERE run_id = p_run_id AND wait_id = p_correlation_id) THEN
                    RAISE EXCEPTION USING ERRCODE = 'WW409',
                        MESSAGE = format('wait %L already completed', p_correlation_id);
                END IF;
                RAISE EXCEPTION USING ERRCODE = 'WWNFW',
                    MESSAGE = format('wait %L does not exist in run %L', p_correlation_id, p_run_id);
            END IF;
            o_run := NULL;
        ELSE
            RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('unknown event type %L', p_event_type);
        END IF;
    END rules;

    -- append_event_v1, inline (one call less per event)
    INSERT INTO events (run_id, event_id, event_type, correlation_id, event_data, spec_version, created_at)
    VALUES (p_run_id, mint_id_v1('evnt', v_now, v_last_id), v_type, v_correlation_id, v_event_data, v_spec, v_now)
    RETURNING * INTO v_event;
    o_events := o_events || v_event;
END
$$;

-- Queue functions ------------------------------------------------------------------

-- Enqueue one message; with an idempotency key held by an unacked message, return
-- that message's id instead (Q-3). NOTIFY wakes consumers at commit (a hint only).
CREATE FUNCTION enqueue_v1(
    p_message_id text, p_queue_name text, p_body json, p_headers json, p_deployment_id text,
    p_idempotency_key text, p_delay_seconds double precision
) RETURNS text
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_id text;
BEGIN
    IF p_idempotency_key IS NULL THEN
        INSERT INTO messages (message_id, queue_name, body, headers, deployment_id, visible_at, created_at)
        VALUES (p_message_id, p_queue_name, p_body, p_headers, p_deployment_id,
                clock_timestamp() + make_interval(secs => greatest(p_delay_seconds, 0)), clock_timestamp());
        PERFORM pg_notify(current_schema() || '.queue', '');
        RETURN p_message_id;
    END IF;
    LOOP
        INSERT INTO messages (message_id, queue_name, body, headers, deployment_id, idempotency_key,
                              visible_at, created_at)
        VALUES (p_message_id, p_queue_name, p_body, p_headers, p_deployment_id, p_idempotency_key,
                clock_timestamp() + make_interval(secs => greatest(p_delay_seconds, 0)), clock_timestamp())
        ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
        RETURNING message_id INTO v_id;
        IF FOUND THEN
            PERFORM pg_notify(current_schema() || '.queue', '');
            RETURN v_id;
        END IF;
        SELECT message_id INTO v_id FROM messages WHERE idempotency_key = p_idempotency_key;
        IF FOUND THEN
            RETURN v_id;
        END IF;
        -- the holder was acked in between: the key is free again
    END LOOP;
END
$$;

-- Claim up to p_limit claimable messages of the given queue-name prefixes, skipping
-- rows another consumer is claiming right now. A message whose previous claim was
-- never settled (its lease ran out) counts that claim as a failure.
CREATE FUNCTION claim_v1(p_prefixes text[], p_lease_seconds double precision, p_limit integer)
RETURNS SETOF messages
LANGUAGE sql SET search_path FROM CURRENT AS $$
    UPDATE messages AS m SET
        attempt = m.attempt + 1,
        failures = m.failures + (m.claim_id IS NOT NULL)::integer,
        claim_id = mint_id_v1('msg', clock_timestamp(), NULL),
        visible_at = clock_timestamp() + make_interval(secs => p_lease_seconds)
    FROM (
        SELECT message_id FROM messages
        WHERE visible_at <= clock_timestamp()
          AND EXISTS (SELECT FROM unnest(p_prefixes) AS p(prefix) WHERE starts_with(queue_name, p.prefix))
        ORDER BY visible_at
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ) AS c
    WHERE m.message_id = c.message_id
    RETURNING m.*
$$;

-- Re-enqueue the workflow of every pending or running run (Q-6), once per run while
-- the previous recovery message is unacked (idempotency key 'recover:<run_id>').
CREATE FUNCTION recover_runs_v1(p_queue_prefix text) RETURNS integer
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_count integer;
BEGIN
    INSERT INTO messages (message_id, queue_name, body, headers, deployment_id, idempotency_key,
                          visible_at, created_at)
    SELECT mint_id_v1('msg', clock_timestamp(), NULL), p_queue_prefix || workflow_name,
           json_build_object('run_id', run_id), '{}'::json, deployment_id, 'recover:' || run_id,
           clock_timestamp(), clock_timestamp()
    FROM runs WHERE status IN ('pending', 'running')
    ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    IF v_count > 0 THEN
        PERFORM pg_notify(current_schema() || '.queue', '');
    END IF;
    RETURN v_count;
END
$$;

-- Streams functions ----------------------------------------------------------------

-- NOTIFY payloads are limited to 8000 bytes: a longer name wakes every reader ('').
CREATE FUNCTION stream_channel_payload_v1(p_name text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN octet_length(p_name) < 7000 THEN p_name ELSE '' END
$$;

-- Append chunks in order; returns the new tail index. Writing to a closed stream is
-- a conflict. NOTIFY (payload: the stream name) wakes live readers at commit.
CREATE FUNCTION write_stream_v1(p_name text, p_run_id text, p_chunks bytea[]) RETURNS integer
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_tail integer;
    v_done boolean;
BEGIN
    INSERT INTO streams (name, run_id) VALUES (p_name, p_run_id) ON CONFLICT (name) DO NOTHING;
    SELECT tail_index, done INTO v_tail, v_done FROM streams WHERE name = p_name FOR UPDATE;
    IF v_done THEN
        RAISE EXCEPTION USING ERRCODE = 'WW409', MESSAGE = format('stream %L is closed', p_name);
    END IF;
    INSERT INTO stream_chunks (name, idx, data)
    SELECT p_name, v_tail + u.n, u.chunk FROM unnest(p_chunks) WITH ORDINALITY AS u(chunk, n);
    v_tail := v_tail + coalesce(cardinality(p_chunks), 0);
    UPDATE streams SET tail_index = v_tail, updated_at = now() WHERE name = p_name;
    PERFORM pg_notify(current_schema() || '.streams', stream_channel_payload_v1(p_name));
    RETURN v_tail;
END
$$;

CREATE FUNCTION close_stream_v1(p_name text, p_run_id text) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO streams (name, run_id, done) VALUES (p_name, p_run_id, true)
    ON CONFLICT (name) DO UPDATE SET done = true, updated_at = now();
    PERFORM pg_notify(current_schema() || '.streams', stream_channel_payload_v1(p_name));
END
$$;
