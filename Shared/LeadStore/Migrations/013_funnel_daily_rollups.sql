-- The funnel scanned the range's leads twice (by source, by period), its sessions and its prompts: 595 ms p95
-- at 200,000 leads, most of it reading rows to count them. These daily counts (UTC days) are kept by triggers,
-- so every writer keeps them: the scorer, outcomes, leadctl simulate, a test's seed. Readers add whole days
-- from here and count the partial days at the ends of a range from the tables. Rows are sharded by the
-- writing backend, as interaction_hourly is (010), so concurrent writers do not queue on one row; readers sum
-- the shards, and a shard's count may go negative when another backend added the row it moves away from.

CREATE TABLE lead_daily (
    day    DATE NOT NULL,
    source TEXT NOT NULL,  -- 'unknown' for a lead without one, as the analytics show it
    status TEXT NOT NULL,
    shard  SMALLINT NOT NULL,
    leads  INTEGER NOT NULL,
    PRIMARY KEY (day, source, status, shard)
);

CREATE FUNCTION utc_day(at TIMESTAMPTZ) RETURNS DATE LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN (at AT TIME ZONE 'UTC')::DATE;

-- Inserted (+1) or deleted (-1) leads, one statement at a time.
CREATE FUNCTION lead_daily_count() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO lead_daily (day, source, status, shard, leads)
        SELECT utc_day(created_at), COALESCE(source, 'unknown'), status, pg_backend_pid() % 64, count(*)
        FROM new_rows GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (day, source, status, shard) DO UPDATE SET leads = lead_daily.leads + EXCLUDED.leads;
    ELSE
        INSERT INTO lead_daily (day, source, status, shard, leads)
        SELECT utc_day(created_at), COALESCE(source, 'unknown'), status, pg_backend_pid() % 64, -count(*)
        FROM old_rows GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (day, source, status, shard) DO UPDATE SET leads = lead_daily.leads + EXCLUDED.leads;
    END IF;
    RETURN NULL;
END
$$;

-- A lead whose status (an outcome), source or day changes moves from one count to another. Row-level, and only
-- for updates that set one of those columns: the scorer's updates never do, so they never run it.
CREATE FUNCTION lead_daily_move() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO lead_daily (day, source, status, shard, leads)
    SELECT day, source, status, pg_backend_pid() % 64, delta
    FROM (VALUES (utc_day(OLD.created_at), COALESCE(OLD.source, 'unknown'), OLD.status, -1),
                 (utc_day(NEW.created_at), COALESCE(NEW.source, 'unknown'), NEW.status, 1))
         AS moved(day, source, status, delta)
    ORDER BY 1, 2, 3
    ON CONFLICT (day, source, status, shard) DO UPDATE SET leads = lead_daily.leads + EXCLUDED.leads;
    RETURN NULL;
END
$$;

-- The scorer's batch counts its new leads once, at its end (below): fired for each lead it inserts, this
-- trigger updated the same row again and again in one transaction, 85 µs a lead, 5 % of the batch.
CREATE TRIGGER leads_daily_insert AFTER INSERT ON leads
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    WHEN (current_setting('lead.scorer_batch', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION lead_daily_count();
CREATE TRIGGER leads_daily_delete AFTER DELETE ON leads
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION lead_daily_count();
CREATE TRIGGER leads_daily_update AFTER UPDATE OF status, source, created_at ON leads
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status
                       OR COALESCE(OLD.source, 'unknown') IS DISTINCT FROM COALESCE(NEW.source, 'unknown')
                       OR utc_day(OLD.created_at) IS DISTINCT FROM utc_day(NEW.created_at))
    EXECUTE FUNCTION lead_daily_move();

-- Sessions by the day they started, and sessions by the day of their first prompt ("prompted" in the funnel:
-- a session counts once, in the period it was first asked for contact details).
CREATE TABLE session_daily (
    day      DATE NOT NULL,
    shard    SMALLINT NOT NULL,
    sessions INTEGER NOT NULL DEFAULT 0,
    prompted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, shard)
);

CREATE FUNCTION session_daily_sessions() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO session_daily (day, shard, sessions)
    SELECT utc_day(created_at), pg_backend_pid() % 64, count(*) FROM new_rows GROUP BY 1 ORDER BY 1
    ON CONFLICT (day, shard) DO UPDATE SET sessions = session_daily.sessions + EXCLUDED.sessions;
    RETURN NULL;
END
$$;

-- A session's first prompt is its earliest. New prompts that are earliest for their session add one on their
-- day; if the session had an earlier-counted first prompt that is now later than the new one, it moves.
CREATE FUNCTION session_daily_prompted() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO session_daily (day, shard, prompted)
    SELECT utc_day(at), pg_backend_pid() % 64, sum(delta)
    FROM (
        SELECT f.new_first, f.old_first FROM (
            SELECT n.session_id, min(n.created_at) AS new_first,
                   (SELECT min(p.created_at) FROM conversion_prompts p
                    WHERE p.session_id = n.session_id
                      AND p.id NOT IN (SELECT x.id FROM new_rows x WHERE x.session_id = n.session_id)) AS old_first
            FROM new_rows n GROUP BY n.session_id
        ) f
        WHERE f.old_first IS NULL OR f.new_first < f.old_first
    ) firsts,
    LATERAL (VALUES (firsts.new_first, 1), (firsts.old_first, -1)) AS change(at, delta)
    WHERE change.at IS NOT NULL
    GROUP BY 1 ORDER BY 1
    ON CONFLICT (day, shard) DO UPDATE SET prompted = session_daily.prompted + EXCLUDED.prompted;
    RETURN NULL;
END
$$;

CREATE TRIGGER conversion_sessions_daily AFTER INSERT ON conversion_sessions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION session_daily_sessions();
CREATE TRIGGER conversion_prompts_daily AFTER INSERT ON conversion_prompts
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION session_daily_prompted();

-- What is already there.
INSERT INTO lead_daily (day, source, status, shard, leads)
SELECT utc_day(created_at), COALESCE(source, 'unknown'), status, 0, count(*) FROM leads GROUP BY 1, 2, 3;
INSERT INTO session_daily (day, shard, sessions, prompted)
SELECT day, 0, sum(sessions), sum(prompted) FROM (
    SELECT utc_day(created_at) AS day, 1 AS sessions, 0 AS prompted FROM conversion_sessions
    UNION ALL
    SELECT utc_day(min(created_at)), 0, 1 FROM conversion_prompts GROUP BY session_id
) counted
GROUP BY day;

-- 012's batch function, with its new leads counted once at the end of the batch (c_leads).
CREATE OR REPLACE FUNCTION lead_process_events(p_events JSONB)
RETURNS TABLE (inserted INTEGER, duplicates INTEGER, leads_created INTEGER, leads_updated INTEGER)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    ev             JSONB;
    v_event        UUID;
    v_session      TEXT;
    v_email        TEXT;
    v_phone        TEXT;
    v_interaction  BIGINT;
    v_ids          BIGINT[];
    v_event_ids    UUID[];
    v_lead_id      BIGINT;
    v_other_id     BIGINT;
    v_linked_id    BIGINT;
    v_linked_email TEXT;
    v_linked_phone TEXT;
    v_json         JSONB;
    v_line         JSONB;
    v_first_type   TEXT;
    v_linked_score INTEGER;
    v_linked_prob  DOUBLE PRECISION;
    v_linked_named BOOLEAN;
    v_linked_procedure BOOLEAN;
    v_first_at     TIMESTAMPTZ;
    v_created      BOOLEAN;
    v_changed      BOOLEAN;
    v_rescored     BOOLEAN;
    v_old_score    INTEGER;
    v_old_prob     DOUBLE PRECISION;
    v_types        INTEGER;
    v_best         JSONB;
    v_lines        JSONB;
    v_sum          INTEGER;
    v_score        INTEGER;
    v_prob         DOUBLE PRECISION;
    v_model        BOOLEAN;
    -- Written at the end of the batch, in this order.
    o_keys         TEXT[] := '{}';
    o_bodies       JSONB[] := '{}';
    s_leads        BIGINT[] := '{}';
    s_events       UUID[] := '{}';
    s_interactions BIGINT[] := '{}';
    s_lines        JSONB[] := '{}';
    s_scores       INTEGER[] := '{}';
    t_leads        BIGINT[] := '{}';
    t_times        TIMESTAMPTZ[] := '{}';
    c_leads        BIGINT[] := '{}';
BEGIN
    inserted := 0; duplicates := 0; leads_created := 0; leads_updated := 0;

    -- Serialize work on the same session or person across concurrent scorers. Keys are taken in one
    -- global order, so two batches never deadlock on them.
    PERFORM pg_advisory_xact_lock(k)
    FROM (
        SELECT DISTINCT hashtextextended(key, 7) AS k
        FROM jsonb_array_elements(p_events) AS e,
             LATERAL (VALUES ('s:' || (e->>'session_id')),
                             ('e:' || (e->>'email_normalized')),
                             ('p:' || (e->>'phone_normalized'))) AS keys(key)
        WHERE key IS NOT NULL
        ORDER BY 1
    ) AS ordered;

    -- 1. Every interaction in one statement; a known event_id (redelivery, replay) is skipped entirely. One
    --    without a contact, in a session that has an open lead, is inserted linked to that lead.
    PERFORM set_config('lead.scorer_batch', 'on', true);
    WITH new_rows AS (
        INSERT INTO user_interactions (event_id, session_id, user_id, interaction_type, source_page, data, score,
                                       score_breakdown, occurred_at, received_at, lead_id, converted_to_lead)
        SELECT (e.value->>'event_id')::UUID, e.value->>'session_id', (e.value->>'user_id')::BIGINT, e.value->>'type',
               e.value->>'source_page', COALESCE(e.value->'data', '{}'::jsonb), (e.value->>'score')::INTEGER,
               e.value->'breakdown', (e.value->>'occurred_at')::TIMESTAMPTZ, (e.value->>'received_at')::TIMESTAMPTZ,
               known.lead_id, known.lead_id IS NOT NULL
        FROM jsonb_array_elements(p_events) WITH ORDINALITY AS e(value, position)
        LEFT JOIN LATERAL (
            SELECT sl.lead_id FROM session_leads sl JOIN leads l ON l.id = sl.lead_id
            WHERE sl.session_id = e.value->>'session_id' AND lead_is_open(l.status)
              AND e.value->>'email_normalized' IS NULL AND e.value->>'phone_normalized' IS NULL
        ) known ON TRUE
        ORDER BY e.position
        ON CONFLICT (event_id) DO NOTHING
        RETURNING id, event_id
    )
    SELECT COALESCE(array_agg(id), '{}'), COALESCE(array_agg(event_id), '{}') INTO v_ids, v_event_ids FROM new_rows;
    inserted := cardinality(v_ids);
    duplicates := jsonb_array_length(p_events) - inserted;
    IF inserted = 0 THEN
        RETURN NEXT;
        RETURN;
    END IF;
    v_model := EXISTS (SELECT 1 FROM prediction_models WHERE active);

    -- 2. Lead work, in order, only for new interactions that carry a contact or whose session has a lead.
    FOR ev, v_interaction IN
        SELECT e.value, n.id
        FROM unnest(v_ids, v_event_ids) AS n(id, event_id)
        JOIN jsonb_array_elements(p_events) WITH ORDINALITY AS e(value, position)
          ON (e.value->>'event_id')::UUID = n.event_id
        LEFT JOIN LATERAL (
            SELECT TRUE AS has_lead FROM session_leads sl WHERE sl.session_id = e.value->>'session_id' LIMIT 1
        ) linked ON TRUE
        WHERE e.value->>'email_normalized' IS NOT NULL OR e.value->>'phone_normalized' IS NOT NULL
           OR linked.has_lead
        ORDER BY e.position
    LOOP
        v_event := (ev->>'event_id')::UUID;
        v_session := ev->>'session_id';
        v_email := ev->>'email_normalized';
        v_phone := ev->>'phone_normalized';
        v_lead_id := NULL;
        v_other_id := NULL;

        -- 1. The person, by contact, and the session's open lead, in one statement.
        SELECT (SELECT id FROM leads WHERE email_normalized = v_email AND lead_is_open(status)),
               (SELECT id FROM leads WHERE phone_normalized = v_phone AND lead_is_open(status)),
               s.lead_id, s.email_normalized, s.phone_normalized, s.lead_score, s.conversion_probability,
               s.patient_name IS NOT NULL, s.procedure_name IS NOT NULL
        INTO v_lead_id, v_other_id, v_linked_id, v_linked_email, v_linked_phone, v_linked_score, v_linked_prob,
             v_linked_named, v_linked_procedure
        FROM (SELECT 1) AS one
        LEFT JOIN (
            SELECT sl.lead_id, l.email_normalized, l.phone_normalized, l.lead_score, l.conversion_probability,
                   l.patient_name, l.procedure_name
            FROM session_leads sl JOIN leads l ON l.id = sl.lead_id
            WHERE sl.session_id = v_session AND lead_is_open(l.status)
        ) s ON TRUE;
        IF v_lead_id IS NULL THEN
            v_lead_id := v_other_id;
        ELSIF v_other_id IS NOT NULL AND v_other_id <> v_lead_id THEN
            PERFORM lead_log_conflict(v_event, v_session, v_lead_id, v_other_id,
                                      'email and phone belong to two different leads');
        END IF;

        -- 2. The session's lead, unless the contact says this is somebody else.
        IF v_lead_id IS NULL AND v_linked_id IS NOT NULL THEN
            IF (v_email IS NOT NULL AND v_linked_email IS NOT NULL AND v_linked_email <> v_email)
               OR (v_phone IS NOT NULL AND v_linked_phone IS NOT NULL AND v_linked_phone <> v_phone) THEN
                PERFORM lead_log_conflict(v_event, v_session, v_linked_id, NULL,
                                          'session shared by two identified people');
            ELSE
                v_lead_id := v_linked_id;
            END IF;
        END IF;

        -- 3. The interactions the score is made of: for a new lead, the ones about to join it (the session's
        --    unlinked history with this one, or this one alone when the session is another lead's); for a
        --    known lead, its interactions once this one (and the session's history) has joined it.
        v_created := v_lead_id IS NULL;
        v_first_type := NULL;
        v_first_at := NULL;
        IF v_created THEN
            IF NOT (ev->>'can_create')::BOOLEAN THEN
                CONTINUE;
            END IF;
            IF v_linked_id IS NULL THEN
                SELECT count(DISTINCT interaction_type), (array_agg(score_breakdown ORDER BY score DESC, id))[1],
                       (array_agg(interaction_type ORDER BY occurred_at, id))[1], min(occurred_at)
                INTO v_types, v_best, v_first_type, v_first_at
                FROM user_interactions WHERE session_id = v_session AND lead_id IS NULL;
            ELSE
                v_types := 1;
                v_best := ev->'breakdown';
            END IF;
        ELSE
            v_linked_id := lead_link_interaction(v_lead_id, v_linked_id, v_session, v_interaction, v_event);
            SELECT count(DISTINCT interaction_type), (array_agg(score_breakdown ORDER BY score DESC, id))[1]
            INTO v_types, v_best
            FROM user_interactions WHERE lead_id = v_lead_id;
        END IF;

        -- 4. Score: the best interaction's lines, +5 per further distinct type, capped at 100.
        v_lines := '[]'::jsonb;
        v_sum := 0;
        IF jsonb_typeof(v_best) = 'array' THEN
            FOR i IN 0 .. jsonb_array_length(v_best) - 1 LOOP
                v_line := v_best -> i;
                IF v_line->>'rule' <> 'cap' THEN
                    v_lines := v_lines || jsonb_build_array(v_line);
                    v_sum := v_sum + COALESCE((v_line->>'points')::INTEGER, 0);
                END IF;
            END LOOP;
        END IF;
        IF v_types > 1 THEN
            v_lines := v_lines || jsonb_build_array(jsonb_build_object('rule', 'distinct_types', 'points', 5 * (v_types - 1)));
            v_sum := v_sum + 5 * (v_types - 1);
        END IF;
        IF v_sum > 100 THEN
            v_lines := v_lines || jsonb_build_array(jsonb_build_object('rule', 'cap', 'points', 100 - v_sum));
        END IF;
        v_score := LEAST(GREATEST(v_sum, 0), 100);

        -- 5. Write the lead once.
        IF v_created THEN
            INSERT INTO leads (patient_name, mobile_number, email, procedure_name, source, message, interaction_id,
                               lead_score, engagement_level, session_id, email_normalized, phone_normalized,
                               last_interaction_at, first_interaction_type, first_interaction_at)
            VALUES (ev->>'name', CASE WHEN v_phone IS NOT NULL THEN ev->>'phone' END,
                    CASE WHEN v_email IS NOT NULL THEN ev->>'email' END, ev->>'procedure_name', ev->>'source',
                    ev->>'message', v_interaction, v_score, lead_engagement(v_score), v_session, v_email, v_phone,
                    (ev->>'occurred_at')::TIMESTAMPTZ, v_first_type, v_first_at)
            RETURNING id, lead_json(leads) INTO v_lead_id, v_json;
            leads_created := leads_created + 1;
            c_leads := array_append(c_leads, v_lead_id);
            v_linked_id := lead_link_interaction(v_lead_id, v_linked_id, v_session, v_interaction, v_event);
            IF v_model THEN
                UPDATE leads SET conversion_probability = lead_predict_features(lead_features(v_lead_id, v_score, now()))
                WHERE id = v_lead_id RETURNING lead_json(leads) INTO v_json;
            END IF;
            v_old_score := NULL;
            v_rescored := TRUE;
            v_changed := TRUE;
        ELSE
            v_prob := NULL;
            IF v_model THEN
                v_prob := lead_predict_features(lead_features(v_lead_id, v_score, now()));
            END IF;
        END IF;
        IF v_created THEN
            NULL;
        ELSIF v_email IS NULL AND v_phone IS NULL AND v_lead_id = v_linked_id AND v_score = v_linked_score
              AND v_prob IS NOT DISTINCT FROM v_linked_prob
              AND (v_linked_named OR ev->>'name' IS NULL) AND (v_linked_procedure OR ev->>'procedure_name' IS NULL) THEN
            -- Nothing the lead shows changes: only last_interaction_at, written after the loop.
            t_leads := array_append(t_leads, v_lead_id);
            t_times := array_append(t_times, (ev->>'occurred_at')::TIMESTAMPTZ);
            v_rescored := FALSE;
            v_changed := FALSE;
        ELSE
            UPDATE leads l SET
                patient_name = n.patient_name, procedure_name = n.procedure_name,
                email = n.email, email_normalized = n.email_normalized,
                mobile_number = n.mobile_number, phone_normalized = n.phone_normalized,
                last_interaction_at = n.last_interaction_at,
                lead_score = v_score, engagement_level = lead_engagement(v_score), conversion_probability = v_prob,
                updated_at = CASE WHEN n.filled OR n.old_score <> v_score OR n.old_prob IS DISTINCT FROM v_prob
                                  THEN now() ELSE l.updated_at END
            FROM (
                SELECT f.*, f.patient_name IS DISTINCT FROM o.patient_name
                            OR f.procedure_name IS DISTINCT FROM o.procedure_name
                            OR f.email IS DISTINCT FROM o.email
                            OR f.mobile_number IS DISTINCT FROM o.mobile_number AS filled,
                       o.lead_score AS old_score, o.conversion_probability AS old_prob
                FROM leads o, LATERAL (
                    SELECT COALESCE(o.patient_name, ev->>'name') AS patient_name,
                           COALESCE(o.procedure_name, ev->>'procedure_name') AS procedure_name,
                           CASE WHEN fill_email THEN ev->>'email' ELSE o.email END AS email,
                           CASE WHEN fill_email THEN v_email ELSE o.email_normalized END AS email_normalized,
                           CASE WHEN fill_phone THEN ev->>'phone' ELSE o.mobile_number END AS mobile_number,
                           CASE WHEN fill_phone THEN v_phone ELSE o.phone_normalized END AS phone_normalized,
                           GREATEST(o.last_interaction_at, (ev->>'occurred_at')::TIMESTAMPTZ) AS last_interaction_at
                    FROM (SELECT
                        o.email_normalized IS NULL AND v_email IS NOT NULL AND NOT EXISTS (
                            SELECT 1 FROM leads x WHERE x.email_normalized = v_email AND lead_is_open(x.status)) AS fill_email,
                        o.phone_normalized IS NULL AND v_phone IS NOT NULL AND NOT EXISTS (
                            SELECT 1 FROM leads x WHERE x.phone_normalized = v_phone AND lead_is_open(x.status)) AS fill_phone
                    ) fills
                ) f
                WHERE o.id = v_lead_id
            ) n
            WHERE l.id = v_lead_id
            RETURNING lead_json(l), n.old_score, n.filled OR n.old_prob IS DISTINCT FROM v_prob
            INTO v_json, v_old_score, v_changed;
            v_rescored := v_old_score <> v_score;
        END IF;

        -- 6. Ledger rows and messages, written after the loop.
        IF v_rescored THEN
            s_leads := array_append(s_leads, v_lead_id);
            s_events := array_append(s_events, v_event);
            s_interactions := array_append(s_interactions, v_interaction);
            s_lines := array_append(s_lines, v_lines);
            s_scores := array_append(s_scores, v_score);
            o_keys := array_append(o_keys, 'lead.scored');
            o_bodies := array_append(o_bodies, jsonb_build_object(
                'lead_id', v_lead_id, 'interaction_id', v_interaction, 'event_id', v_event,
                'lead_score', v_score, 'previous_score', v_old_score,
                'engagement_level', v_json->'engagement_level', 'breakdown', v_lines,
                'source', v_json->'source', 'procedure_name', v_json->'procedure_name',
                'conversion_probability', v_json->'conversion_probability'));
        END IF;
        IF v_created THEN
            o_keys := array_append(o_keys, 'lead.created');
            o_bodies := array_append(o_bodies, v_json);
        ELSIF v_rescored OR v_changed THEN
            o_keys := array_append(o_keys, 'lead.updated');
            o_bodies := array_append(o_bodies, v_json);
            leads_updated := leads_updated + 1;
        END IF;
    END LOOP;

    UPDATE leads l SET last_interaction_at = t.at
    FROM (
        SELECT lead_id, max(at) AS at FROM unnest(t_leads, t_times) AS t(lead_id, at) GROUP BY lead_id ORDER BY lead_id
    ) t
    WHERE l.id = t.lead_id AND (l.last_interaction_at IS NULL OR l.last_interaction_at < t.at);
    INSERT INTO lead_score_ledger (lead_id, event_id, interaction_id, rule, points, lead_score)
    SELECT s.lead_id, s.event_id, s.interaction_id, line.value->>'rule', (line.value->>'points')::INTEGER, s.score
    FROM unnest(s_leads, s_events, s_interactions, s_lines, s_scores)
             WITH ORDINALITY AS s(lead_id, event_id, interaction_id, lines, score, position),
         jsonb_array_elements(s.lines) WITH ORDINALITY AS line(value, n)
    ORDER BY s.position, line.n;
    INSERT INTO outbox (exchange, routing_key, body)
    SELECT 'leads.events', o.routing_key, o.body
    FROM unnest(o_keys, o_bodies) WITH ORDINALITY AS o(routing_key, body, position)
    ORDER BY o.position;
    INSERT INTO lead_daily (day, source, status, shard, leads)
    SELECT utc_day(created_at), COALESCE(source, 'unknown'), status, pg_backend_pid() % 64, count(*)
    FROM leads WHERE id = ANY(c_leads) GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (day, source, status, shard) DO UPDATE SET leads = lead_daily.leads + EXCLUDED.leads;
    RETURN NEXT;
END
$$;

-- The funnel's partial days count prompts by time (a sequential scan of every prompt without this).
CREATE INDEX conversion_prompts_created ON conversion_prompts (created_at);
