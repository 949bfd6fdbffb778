-- 0006: create_event_v2, create_event_v1 returning flat columns (issue 8, speed, fourth round).
--
-- create_event_v1 returns an array of events and four composites (runs, steps, hooks,
-- waits); the World's query took the last event out of the array and each column out of
-- the composites (20-21 field selections per event) in an outer query. Building the
-- array and the composite result and taking them apart again cost server CPU on every
-- event. create_event_v2 applies the same rules with the same statements and returns
-- the appended event and the one entity as plain columns, named e_* and x_* after the
-- table columns (rows.EVENT_COLUMNS, rows.ENTITY_COLUMNS), which the query selects by
-- name. Its body is create_event_v1's, except:
--   - the run, step, hook and wait rows are local variables, copied into the x_*
--     columns at the end (only the kind that was set: the others are NULL);
--   - only the last appended event is returned (query create_event only ever read the
--     last one), so the synthetic run_created of a resilient start keeps just its id;
--   - a run_started on a running run, which appends nothing (EV-5), leaves the block
--     rules with nothing to append instead of returning early.
--
-- create_event_v1 stays, unchanged, for the code of the previous release, which calls
-- it; a later migration may drop it with min-code-version 6.
--
-- min-code-version: 1

CREATE FUNCTION create_event_v2(
    p_run_id text,
    p_event_type text,
    p_correlation_id text,
    p_data json,
    p_spec_version integer,
    p_world_spec_version integer,
    -- the appended event (rows.EVENT_COLUMNS), all NULL when nothing was appended
    OUT e_run_id text,
    OUT e_event_id text,
    OUT e_event_type text,
    OUT e_correlation_id text,
    OUT e_event_data json,
    OUT e_spec_version integer,
    OUT e_created_at timestamptz,
    -- the entity the event type's kind may set (rows.ENTITY_COLUMNS; a column of the same
    -- name and type serves every kind that has it), all NULL when none was set
    OUT x_run_id text,
    OUT x_status text,
    OUT x_deployment_id text,
    OUT x_workflow_name text,
    OUT x_spec_version integer,
    OUT x_execution_context json,
    OUT x_input bytea,
    OUT x_output bytea,
    OUT x_error json,
    OUT x_started_at timestamptz,
    OUT x_completed_at timestamptz,
    OUT x_created_at timestamptz,
    OUT x_updated_at timestamptz,
    OUT x_step_id text,
    OUT x_step_name text,
    OUT x_attempt integer,
    OUT x_retry_after timestamptz,
    OUT x_hook_id text,
    OUT x_token text,
    OUT x_metadata bytea,
    OUT x_is_webhook boolean,
    OUT x_wait_id text,
    OUT x_resume_at timestamptz
)
LANGUAGE plpgsql AS $$
DECLARE
    v_data json;
    v_spec integer := coalesce(p_spec_version, p_world_spec_version);
    v_now timestamptz;
    v_last_at timestamptz;
    v_last_id text;
    v_exists boolean;
    o_run runs;
    o_step steps;
    o_hook hooks;
    o_wait waits;
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
            RETURNING run_id, status, deployment_id, workflow_name, spec_version, execution_context,
                input, output, error, started_at, completed_at, created_at, updated_at
            INTO x_run_id, x_status, x_deployment_id, x_workflow_name, x_spec_version,
                x_execution_context, x_input, x_output, x_error, x_started_at, x_completed_at,
                x_created_at, x_updated_at;
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
                    RETURNING event_id INTO v_last_id;
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
                v_type := NULL;
                EXIT rules;
            END IF;
            UPDATE runs SET status = 'running', started_at = coalesce(started_at, v_now), updated_at = v_now
            WHERE run_id = p_run_id AND status = 'pending'
            RETURNING run_id, status, deployment_id, workflow_name, spec_version, execution_context,
                input, output, error, started_at, completed_at, created_at, updated_at
            INTO x_run_id, x_status, x_deployment_id, x_workflow_name, x_spec_version,
                x_execution_context, x_input, x_output, x_error, x_started_at, x_completed_at,
                x_created_at, x_updated_at;
            o_run := NULL;  -- returned already
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
            RETURNING run_id, status, deployment_id, workflow_name, spec_version, execution_context,
                input, output, error, started_at, completed_at, created_at, updated_at
            INTO x_run_id, x_status, x_deployment_id, x_workflow_name, x_spec_version,
                x_execution_context, x_input, x_output, x_error, x_started_at, x_completed_at,
                x_created_at, x_updated_at;
            IF NOT FOUND THEN  -- unreachable under the run lock; a guard, not a code path
                RAISE EXCEPTION USING ERRCODE = 'WW409', MESSAGE = format('run %L changed concurrently', p_run_id);
            END IF;
            o_run := NULL;  -- returned already
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
                RETURNING run_id, step_id, step_name, status, input, output, error, attempt,
                    spec_version, started_at, completed_at, retry_after, created_at, updated_at
                INTO x_run_id, x_step_id, x_step_name, x_status, x_input, x_output, x_error, x_attempt,
                    x_spec_version, x_started_at, x_completed_at, x_retry_after, x_created_at,
                    x_updated_at;
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
                RETURNING run_id, step_id, step_name, status, input, output, error, attempt,
                    spec_version, started_at, completed_at, retry_after, created_at, updated_at
                INTO x_run_id, x_step_id, x_step_name, x_status, x_input, x_output, x_error, x_attempt,
                    x_spec_version, x_started_at, x_completed_at, x_retry_after, x_created_at,
                    x_updated_at;
                IF NOT FOUND THEN  -- unreachable under the run lock; a guard, not a code path
                    RAISE EXCEPTION USING ERRCODE = 'WW409', MESSAGE = format('step %L changed concurrently', p_correlation_id);
                END IF;
                o_step := NULL;  -- returned already
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

    IF v_type IS NOT NULL THEN
        INSERT INTO events (run_id, event_id, event_type, correlation_id, event_data, spec_version, created_at)
        VALUES (p_run_id, mint_id_v1('evnt', v_now, v_last_id), v_type, v_correlation_id, v_event_data, v_spec, v_now)
        RETURNING run_id, event_id, event_type, correlation_id, event_data, spec_version, created_at
        INTO e_run_id, e_event_id, e_event_type, e_correlation_id, e_event_data, e_spec_version, e_created_at;
    END IF;

    -- the entity, flat, where the branch did not return it into x_* already: at most one
    -- kind is set (the others were never read or were cleared)
    IF o_run.run_id IS NOT NULL THEN
        x_run_id := o_run.run_id; x_status := o_run.status; x_deployment_id := o_run.deployment_id;
        x_workflow_name := o_run.workflow_name; x_spec_version := o_run.spec_version;
        x_execution_context := o_run.execution_context; x_input := o_run.input; x_output := o_run.output;
        x_error := o_run.error; x_started_at := o_run.started_at; x_completed_at := o_run.completed_at;
        x_created_at := o_run.created_at; x_updated_at := o_run.updated_at;
    ELSIF o_step.run_id IS NOT NULL THEN
        x_run_id := o_step.run_id; x_step_id := o_step.step_id; x_step_name := o_step.step_name;
        x_status := o_step.status; x_input := o_step.input; x_output := o_step.output; x_error := o_step.error;
        x_attempt := o_step.attempt; x_spec_version := o_step.spec_version; x_started_at := o_step.started_at;
        x_completed_at := o_step.completed_at; x_retry_after := o_step.retry_after;
        x_created_at := o_step.created_at; x_updated_at := o_step.updated_at;
    ELSIF o_hook.hook_id IS NOT NULL THEN
        x_hook_id := o_hook.hook_id; x_run_id := o_hook.run_id; x_token := o_hook.token;
        x_metadata := o_hook.metadata; x_is_webhook := o_hook.is_webhook; x_spec_version := o_hook.spec_version;
        x_created_at := o_hook.created_at;
    ELSIF o_wait.run_id IS NOT NULL THEN
        x_run_id := o_wait.run_id; x_wait_id := o_wait.wait_id; x_status := o_wait.status;
        x_resume_at := o_wait.resume_at; x_completed_at := o_wait.completed_at;
        x_created_at := o_wait.created_at; x_updated_at := o_wait.updated_at;
    END IF;
END
$$;
