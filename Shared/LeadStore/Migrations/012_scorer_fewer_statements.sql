-- The scorer's batch function with fewer statements per lead event. Same contract and effects as 003 + 007;
-- what changed is how often PostgreSQL starts an executor or plans a statement. A profile of one backend on
-- 500-event batches had 72 % of the time in statement execution inside the function, 11 % in executor
-- start-up alone, 9 % re-planning (custom plans), 14 % hashing the whole session_leads table:
-- - which events need lead work is found by an index probe of session_leads per event, not by hashing the
--   whole session_leads table on every batch (that cost grew with the table);
-- - the person's leads by contact and the session's lead are one statement;
-- - a new lead is inserted with its score (computed from the interactions that are about to join it), and an
--   existing lead is written once per event (fill-ins, score, probability and updated_at in one UPDATE), not
--   up to three times;
-- - the score lines are built by plpgsql expressions, not by two queries over the JSON;
-- - score ledger rows and outbox messages are collected in arrays and written by one statement each at the
--   end of the batch, in the order the loop produced them (outbox ids keep the publish order);
-- - an anonymous interaction in a session that already has an open lead is inserted linked to it (the lead
--   the per-event logic would give it), which saves rewriting the row and its seven index entries; such rows
--   skip the first-interaction trigger (the lead's first interaction is set when it is created);
-- - when such an interaction changes nothing but the lead's last_interaction_at, that is written for all of
--   them by one UPDATE at the end of the batch;
-- - whether a prediction model is active is asked once per batch;
-- - the function runs its statements with generic plans (plan_cache_mode), planned once per connection.

-- Links an interaction (and, when the session is this lead's, the session's unlinked history) to a lead;
-- p_linked is the open lead the session belonged to (NULL: none). Returns the session's lead afterwards.
CREATE FUNCTION lead_link_interaction(p_lead BIGINT, p_linked BIGINT, p_session TEXT, p_interaction BIGINT, p_event UUID)
RETURNS BIGINT LANGUAGE plpgsql AS $$
BEGIN
    IF p_linked IS NULL THEN
        INSERT INTO session_leads (session_id, lead_id) VALUES (p_session, p_lead)
        ON CONFLICT (session_id) DO UPDATE SET lead_id = EXCLUDED.lead_id, linked_at = now();
        p_linked := p_lead;
    ELSIF p_linked <> p_lead THEN
        PERFORM lead_log_conflict(p_event, p_session, p_lead, p_linked, 'session already belongs to another lead');
    END IF;
    IF p_linked = p_lead THEN
        -- The interaction is in the session and unlinked (or linked to this lead by an earlier event of the
        -- batch), so the session's stitching covers it.
        UPDATE user_interactions SET lead_id = p_lead, converted_to_lead = TRUE
        WHERE session_id = p_session AND lead_id IS NULL;
    ELSE
        UPDATE user_interactions SET lead_id = p_lead, converted_to_lead = TRUE WHERE id = p_interaction;
    END IF;
    RETURN p_linked;
END
$$;

-- Processes a batch of scored interactions (a JSON array, in order). Each element has the event's fields
-- plus: score, breakdown, email_normalized, phone_normalized, can_create, source, procedure_name, message,
-- name, email, phone. A redelivered event (known event_id) changes nothing.
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
    RETURN NEXT;
END
$$;

-- Interactions the scorer inserts already linked are not history being loaded (leadctl simulate, tests): the
-- lead they join has its first interaction already.
DROP TRIGGER user_interactions_first_on_insert ON user_interactions;
CREATE TRIGGER user_interactions_first_on_insert AFTER INSERT ON user_interactions
    FOR EACH ROW WHEN (NEW.lead_id IS NOT NULL AND current_setting('lead.scorer_batch', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION lead_first_interaction();

-- Superseded by the inline rescore and the batched outbox insert above.
DROP FUNCTION lead_rescore(BIGINT, BIGINT, UUID, BOOLEAN);
DROP FUNCTION outbox_add(TEXT, TEXT, JSONB);

-- Each duplicates the leading column of another index (user_interactions_lead_time, leads_created_id) and was
-- one more entry to write for every linked interaction and every new lead.
DROP INDEX user_interactions_lead;
DROP INDEX leads_created_at;
