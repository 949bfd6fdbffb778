-- 0005: create_event_v1 cheaper on the server and in the WAL (issue 8, speed, third round).
--
-- create_event_v1 called four helpers on the hot path: codec_object_v1 on every event,
-- append_event_v1 for every append, insert_run_v1 and run_created_data_v1 for a new run.
-- Each call of a PL/pgSQL function sets up a frame of its own, about as costly as the
-- statement inside it (pg_stat_user_functions: append_event_v1 ~50 us of its own per
-- event, insert_run_v1 ~75 us for its one INSERT). Their statements are now written in
-- create_event_v1 itself; the appends that end a branch (run_created, a hook_conflict,
-- cancelling a cancelled run) set the event to append and leave the block `rules`, so
-- one INSERT INTO events serves them all. append_event_v1, insert_run_v1 and
-- run_created_data_v1 had no other caller and are dropped; codec_object_v1 stays
-- (structured_error_v1 uses it).
--
-- The step and hook lookups no longer take a row lock (FOR UPDATE): every write to a
-- step or hook happens in create_event_v1 under its run's row lock, taken first, or
-- in delete_expired_runs on runs it holds locked, so the second lock only wrote a lock
-- record to the WAL and dirtied the page once more.
--
-- events had five indexes, two of them on (run_id, seq) and (seq): every event wrote
-- both. The primary key is now (run_id, seq) -- seq alone is unique by construction
-- (bigserial) and nothing looks events up by seq alone; lists filter by run or
-- correlation id first (pages.py) -- and events_run_idx, which it replaces, is dropped.
-- For the same reason steps loses the unique index on seq alone: steps are listed per
-- run (steps_run_idx) and found by id, never by seq alone.
-- Rebuilding the key takes the table's ACCESS EXCLUSIVE lock for the time of one
-- index build over events, inside the migration's transaction.
--
-- Names, arguments and results of create_event_v1 are unchanged, so the code of the
-- previous releases gets the cheaper function too.
--
-- min-code-version: 1

ALTER TABLE events DROP CONSTRAINT events_pkey;
ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (run_id, seq);
DROP INDEX events_run_idx;
ALTER TABLE steps DROP CONSTRAINT steps_seq_key;

CREATE OR REPLACE FUNCTION create_event_v1(
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


DROP FUNCTION append_event_v1(text, text, text, text, json, integer, timestamptz);
DROP FUNCTION insert_run_v1(text, json, integer, timestamptz);
DROP FUNCTION run_created_data_v1(json);
