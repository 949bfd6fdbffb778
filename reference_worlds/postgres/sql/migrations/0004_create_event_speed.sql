-- 0004: create_event_v1 cheaper on the server (issue 8, speed): its helpers in PL/pgSQL, no pinned search_path.
--
-- A LANGUAGE sql function that PostgreSQL cannot inline into its caller (one with an
-- INSERT, a FROM clause or a sub-select) is parsed and planned again in every
-- transaction that calls it; an event is one transaction, so append_event_v1,
-- codec_object_v1, insert_run_v1 and run_created_data_v1 were planned anew on every
-- event: about a third of the server's CPU time per event (docs/performance.md).
-- PL/pgSQL keeps its statements' plans for the life of the connection. The bodies
-- below are the same statements; only the language changes.
--
-- create_event_v1 no longer pins its search_path (SET search_path FROM CURRENT): a SET
-- clause on a function changes the setting on every call and back, and each change
-- makes the server recompute its search path and recheck every cached plan the
-- function uses against it -- 15 % of its server time per event, measured. The
-- function resolves the World's tables through the caller's search_path, which every
-- connection of the World sets to the World's schema (Database.connection_kwargs) and
-- has since 0001; a session whose search_path does not lead to the World's tables gets
-- "relation does not exist".
--
-- Names, arguments and results are unchanged, so the code of the previous release gets
-- the faster functions too.
--
-- min-code-version: 1

CREATE OR REPLACE FUNCTION codec_object_v1(p_value json) RETURNS json
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF json_typeof(p_value) = 'object' AND p_value -> '$o' IS NOT NULL
       AND (SELECT count(*) FROM json_object_keys(p_value)) = 1 THEN
        RETURN p_value -> '$o';
    END IF;
    RETURN p_value;
END
$$;

CREATE OR REPLACE FUNCTION append_event_v1(
    p_run_id text, p_after text, p_type text, p_correlation_id text, p_data json, p_spec integer, p_at timestamptz
) RETURNS events
LANGUAGE plpgsql AS $$
DECLARE
    v_event events;
BEGIN
    INSERT INTO events (run_id, event_id, event_type, correlation_id, event_data, spec_version, created_at)
    VALUES (p_run_id, mint_id_v1('evnt', p_at, p_after), p_type, p_correlation_id, p_data, p_spec, p_at)
    RETURNING * INTO v_event;
    RETURN v_event;
END
$$;

CREATE OR REPLACE FUNCTION insert_run_v1(p_run_id text, p_data json, p_spec integer, p_at timestamptz)
RETURNS SETOF runs
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY
    INSERT INTO runs (run_id, status, deployment_id, workflow_name, spec_version, execution_context, input,
                      created_at, updated_at)
    VALUES (p_run_id, 'pending', p_data ->> 'deployment_id', p_data ->> 'workflow_name', p_spec,
            json_value_v1(p_data -> 'execution_context'), codec_bytes_v1(p_data -> 'input'), p_at, p_at)
    ON CONFLICT (run_id) DO NOTHING
    RETURNING *;
END
$$;

CREATE OR REPLACE FUNCTION run_created_data_v1(p_data json) RETURNS json
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN (SELECT json_object_agg(key, value)
            FROM json_each(p_data)
            WHERE key IN ('deployment_id', 'workflow_name', 'input', 'execution_context'));
END
$$;

ALTER FUNCTION create_event_v1(text, text, text, json, integer, integer) RESET search_path;
