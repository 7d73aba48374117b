-- A lead's last_interaction_at is the newest of the interactions that joined it. Until now it was the time of
-- the event that created or updated the lead, so history stitched to it with a newer time did not count: a visit
-- later in the batch that creates the lead (stitched at creation, never in the batch's loop), a creating event
-- that arrives after its session's newer anonymous history, and a known person's contact in a new session whose
-- newer history is stitched to the lead. The web tier's snippet queues and retries events for up to 24 hours, so
-- arrival order is not occurred_at order. Heat (the lead list's decaying score) and the model's recency read
-- last_interaction_at. 52 of 28,036 leads of a scorer benchmark run were behind their newest interaction.
--
-- The newest time comes from the aggregates the scorer already computes over those same interactions (the new
-- lead's history, the known lead's interactions for its score): one max() more in each, no new statement.
-- lead_create_alone is 025's otherwise. lead_process_events is 025's with these times and with step 7 calling
-- migration 026's prediction step (lead_predict_batch with the batch's visits, or lead_note_visits without a
-- model); the old lead_predict_batch goes.

CREATE OR REPLACE FUNCTION lead_create_alone(
    p_events JSONB, p_ids BIGINT[], p_event_ids UUID[],
    OUT o_interactions BIGINT[], OUT o_leads BIGINT[], OUT o_keys TEXT[], OUT o_bodies JSONB[]
) LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_positions BIGINT[];
    v_events    JSONB[];
    v_sessions  TEXT[];
BEGIN
    SELECT COALESCE(array_agg(c.id ORDER BY c.position), '{}'), array_agg(c.position ORDER BY c.position),
           array_agg(c.value ORDER BY c.position)
    INTO o_interactions, v_positions, v_events
    FROM (
        SELECT n.id, e.position, e.value,
               count(*) OVER (PARTITION BY e.value->>'session_id') AS in_session,
               count(*) OVER (PARTITION BY e.value->>'email_normalized') AS with_email,
               count(*) OVER (PARTITION BY e.value->>'phone_normalized') AS with_phone
        FROM unnest(p_ids, p_event_ids) AS n(id, event_id)
        JOIN jsonb_array_elements(p_events) WITH ORDINALITY AS e(value, position)
          ON (e.value->>'event_id')::UUID = n.event_id
    ) c
    WHERE (c.value->>'can_create')::BOOLEAN
      AND (c.value->>'email_normalized' IS NOT NULL OR c.value->>'phone_normalized' IS NOT NULL)
      AND c.in_session = 1
      AND (c.value->>'email_normalized' IS NULL OR c.with_email = 1)
      AND (c.value->>'phone_normalized' IS NULL OR c.with_phone = 1)
      AND NOT EXISTS (SELECT 1 FROM leads l
                      WHERE l.email_normalized = c.value->>'email_normalized' AND lead_is_open(l.status) OFFSET 0)
      AND NOT EXISTS (SELECT 1 FROM leads l
                      WHERE l.phone_normalized = c.value->>'phone_normalized' AND lead_is_open(l.status) OFFSET 0)
      AND NOT EXISTS (SELECT 1 FROM session_leads sl JOIN leads l ON l.id = sl.lead_id
                      WHERE sl.session_id = c.value->>'session_id' AND lead_is_open(l.status) OFFSET 0);
    IF cardinality(o_interactions) = 0 THEN
        o_leads := '{}';
        o_keys := '{}';
        o_bodies := '{}';
        RETURN;
    END IF;

    WITH alone AS (
        SELECT c.position, c.interaction, c.ev, h.first_type, h.first_at, h.last_at, s.lines, s.score
        FROM unnest(v_positions, o_interactions, v_events) AS c(position, interaction, ev)
        CROSS JOIN LATERAL (
            SELECT count(DISTINCT u.interaction_type)::INTEGER AS types,
                   (array_agg(u.score_breakdown ORDER BY u.score DESC, u.id))[1] AS best,
                   (array_agg(u.interaction_type ORDER BY u.occurred_at, u.id))[1] AS first_type,
                   min(u.occurred_at) AS first_at, max(u.occurred_at) AS last_at
            FROM user_interactions u
            WHERE u.session_id = c.ev->>'session_id' AND u.lead_id IS NULL
              AND (u.contact_key IS NULL OR u.id = c.interaction
                   OR u.contact_key = ANY(lead_contact_keys(c.ev->>'email_normalized', c.ev->>'phone_normalized')))
        ) h
        CROSS JOIN LATERAL lead_score_lines(h.best, h.types) s
    ), created AS (
        INSERT INTO leads (patient_name, mobile_number, email, procedure_name, source, message, interaction_id,
                           lead_score, engagement_level, session_id, email_normalized, phone_normalized,
                           last_interaction_at, first_interaction_type, first_interaction_at)
        SELECT a.ev->>'name', CASE WHEN a.ev->>'phone_normalized' IS NOT NULL THEN a.ev->>'phone' END,
               CASE WHEN a.ev->>'email_normalized' IS NOT NULL THEN a.ev->>'email' END, a.ev->>'procedure_name',
               a.ev->>'source', a.ev->>'message', a.interaction, a.score, lead_engagement(a.score),
               a.ev->>'session_id', a.ev->>'email_normalized', a.ev->>'phone_normalized',
               GREATEST((a.ev->>'occurred_at')::TIMESTAMPTZ, a.last_at), a.first_type, a.first_at
        FROM alone a
        ORDER BY a.position
        RETURNING id, interaction_id, lead_json(leads) AS body
    ), made AS (
        SELECT c.id, c.body, a.* FROM created c JOIN alone a ON a.interaction = c.interaction_id
    ), ledger AS (
        INSERT INTO lead_score_ledger (lead_id, event_id, interaction_id, rule, points, lead_score)
        SELECT m.id, (m.ev->>'event_id')::UUID, m.interaction, line.value->>'rule', (line.value->>'points')::INTEGER,
               m.score
        FROM made m, jsonb_array_elements(m.lines) WITH ORDINALITY AS line(value, n)
        ORDER BY m.position, line.n
    )
    SELECT array_agg(m.id ORDER BY m.position) FILTER (WHERE k.n = 1),
           array_agg(m.ev->>'session_id' ORDER BY m.position) FILTER (WHERE k.n = 1),
           array_agg(k.key ORDER BY m.position, k.n), array_agg(k.body ORDER BY m.position, k.n)
    INTO o_leads, v_sessions, o_keys, o_bodies
    FROM made m,
    LATERAL (VALUES
        (1, 'lead.scored', lead_scored_message(m.id, m.interaction, (m.ev->>'event_id')::UUID, m.score, NULL, m.lines, m.body)),
        (2, 'lead.created', m.body)
    ) AS k(n, key, body);

    -- The sessions are these leads' now (a session's link to a closed lead is replaced), and their unlinked
    -- history joins them.
    INSERT INTO session_leads (session_id, lead_id)
    SELECT s.session_id, s.lead_id FROM unnest(v_sessions, o_leads) AS s(session_id, lead_id) ORDER BY s.session_id
    ON CONFLICT (session_id) DO UPDATE SET lead_id = EXCLUDED.lead_id, linked_at = now();
    UPDATE user_interactions u SET lead_id = h.lead_id, converted_to_lead = TRUE
    FROM (
        SELECT x.id, s.lead_id FROM unnest(v_sessions, o_leads) AS s(session_id, lead_id)
        JOIN leads l ON l.id = s.lead_id
        CROSS JOIN LATERAL (
            SELECT i.id FROM user_interactions i WHERE i.session_id = s.session_id AND i.lead_id IS NULL
              AND (i.contact_key IS NULL
                   OR i.contact_key = ANY(lead_contact_keys(l.email_normalized, l.phone_normalized))) OFFSET 0
        ) x
    ) h
    WHERE u.id = h.id;
END
$$;

-- 025's, with the newest time of the new lead's history or the known lead's interactions, and 026's step 7.
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
    v_scored       RECORD;
    v_first_type   TEXT;
    v_linked_score INTEGER;
    v_linked_named BOOLEAN;
    v_linked_procedure BOOLEAN;
    v_first_at     TIMESTAMPTZ;
    v_last_at      TIMESTAMPTZ;
    v_created      BOOLEAN;
    v_changed      BOOLEAN;
    v_rescored     BOOLEAN;
    v_old_score    INTEGER;
    v_types        INTEGER;
    v_best         JSONB;
    v_lines        JSONB;
    v_score        INTEGER;
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
    m_leads        BIGINT[] := '{}';
    v_messages     INTEGER;
    v_alone        BIGINT[] := '{}';
    v_alone_leads  BIGINT[];
BEGIN
    inserted := 0; duplicates := 0; leads_created := 0; leads_updated := 0;

    -- Serialize work on the same session or person across concurrent scorers. Keys are taken in one
    -- global order, so two batches never deadlock on them. A caller that already holds them all in this
    -- transaction (the scorer's first transaction, which try-locked them: lead_process_events_leased with
    -- p_keys_locked) has set lead.identity_locked, and they are not taken again.
    IF current_setting('lead.identity_locked', true) IS DISTINCT FROM 'on' THEN
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
    END IF;

    -- 1. Every interaction in one statement; a known event_id (redelivery, replay) is skipped entirely. One
    --    without a contact, in a session that has an open lead, is inserted linked to that lead.
    PERFORM set_config('lead.scorer_batch', 'on', true);
    WITH new_rows AS (
        INSERT INTO user_interactions (event_id, session_id, user_id, interaction_type, source_page, data, score,
                                       score_breakdown, modifiers, occurred_at, received_at, lead_id, converted_to_lead,
                                       contact_key)
        SELECT (e.value->>'event_id')::UUID, e.value->>'session_id', (e.value->>'user_id')::BIGINT, e.value->>'type',
               e.value->>'source_page', COALESCE(e.value->'data', '{}'::jsonb), (e.value->>'score')::INTEGER,
               e.value->'breakdown', (e.value->>'modifiers')::SMALLINT, (e.value->>'occurred_at')::TIMESTAMPTZ, (e.value->>'received_at')::TIMESTAMPTZ,
               known.lead_id, known.lead_id IS NOT NULL,
               lead_contact_key(e.value->>'email_normalized', e.value->>'phone_normalized')
        FROM jsonb_array_elements(p_events) WITH ORDINALITY AS e(value, position)
        LEFT JOIN LATERAL (
            SELECT sl.lead_id FROM session_leads sl JOIN leads l ON l.id = sl.lead_id
            WHERE sl.session_id = e.value->>'session_id' AND lead_is_open(l.status)
              AND e.value->>'email_normalized' IS NULL AND e.value->>'phone_normalized' IS NULL
            LIMIT 1
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

    -- 1b. New leads that no other event of the batch can touch, set-based (lead_create_alone); their messages
    --     come first. Only in batches of 50 new events or more: its statements cost more to start than the
    --     loop's for a few events, and at 200 events/s (batches of a few events) the path doubled the median
    --     202 → lead row latency (133/108 ms against 67/59 ms). lead.set_based_creation = 'on' or 'off' forces
    --     one path (the test that compares them).
    IF (CASE current_setting('lead.set_based_creation', true)
            WHEN 'on' THEN TRUE WHEN 'off' THEN FALSE ELSE inserted >= 50 END) THEN
        SELECT a.o_interactions, a.o_leads, a.o_keys, a.o_bodies INTO v_alone, v_alone_leads, o_keys, o_bodies
        FROM lead_create_alone(p_events, v_ids, v_event_ids) AS a;
        leads_created := cardinality(v_alone_leads);
        c_leads := v_alone_leads;
        IF v_model THEN
            m_leads := v_alone_leads;
        END IF;
    END IF;

    -- 2. Lead work for the other events, in order, only for new interactions that carry a contact or whose
    --    session has a lead.
    FOR ev, v_interaction IN
        SELECT e.value, n.id
        FROM unnest(v_ids, v_event_ids) AS n(id, event_id)
        JOIN jsonb_array_elements(p_events) WITH ORDINALITY AS e(value, position)
          ON (e.value->>'event_id')::UUID = n.event_id
        LEFT JOIN LATERAL (
            SELECT TRUE AS has_lead FROM session_leads sl WHERE sl.session_id = e.value->>'session_id' LIMIT 1
        ) linked ON TRUE
        WHERE (e.value->>'email_normalized' IS NOT NULL OR e.value->>'phone_normalized' IS NOT NULL
               OR linked.has_lead)
          AND n.id <> ALL(v_alone)
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
               s.lead_id, s.email_normalized, s.phone_normalized, s.lead_score,
               s.patient_name IS NOT NULL, s.procedure_name IS NOT NULL
        INTO v_lead_id, v_other_id, v_linked_id, v_linked_email, v_linked_phone, v_linked_score,
             v_linked_named, v_linked_procedure
        FROM (SELECT 1) AS one
        LEFT JOIN (
            SELECT sl.lead_id, l.email_normalized, l.phone_normalized, l.lead_score,
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
                       (array_agg(interaction_type ORDER BY occurred_at, id))[1], min(occurred_at), max(occurred_at)
                INTO v_types, v_best, v_first_type, v_first_at, v_last_at
                FROM user_interactions
                WHERE session_id = v_session AND lead_id IS NULL
                  AND (contact_key IS NULL OR id = v_interaction OR contact_key = ANY(lead_contact_keys(v_email, v_phone)));
            ELSE
                v_types := 1;
                v_best := ev->'breakdown';
                v_last_at := NULL;
            END IF;
        ELSE
            v_linked_id := lead_link_interaction(v_lead_id, v_linked_id, v_session, v_interaction, v_event);
            SELECT count(DISTINCT interaction_type), (array_agg(score_breakdown ORDER BY score DESC, id))[1], max(occurred_at)
            INTO v_types, v_best, v_last_at
            FROM user_interactions WHERE lead_id = v_lead_id;
        END IF;

        -- 4. Score: the best interaction's lines, +5 per further distinct type, capped at 100.
        v_scored := lead_score_lines(v_best, v_types);
        v_lines := v_scored.lines;
        v_score := v_scored.score;

        -- 5. Write the lead once.
        IF v_created THEN
            INSERT INTO leads (patient_name, mobile_number, email, procedure_name, source, message, interaction_id,
                               lead_score, engagement_level, session_id, email_normalized, phone_normalized,
                               last_interaction_at, first_interaction_type, first_interaction_at)
            VALUES (ev->>'name', CASE WHEN v_phone IS NOT NULL THEN ev->>'phone' END,
                    CASE WHEN v_email IS NOT NULL THEN ev->>'email' END, ev->>'procedure_name', ev->>'source',
                    ev->>'message', v_interaction, v_score, lead_engagement(v_score), v_session, v_email, v_phone,
                    GREATEST((ev->>'occurred_at')::TIMESTAMPTZ, v_last_at), v_first_type, v_first_at)
            RETURNING id, lead_json(leads) INTO v_lead_id, v_json;
            leads_created := leads_created + 1;
            c_leads := array_append(c_leads, v_lead_id);
            v_linked_id := lead_link_interaction(v_lead_id, v_linked_id, v_session, v_interaction, v_event);
            v_old_score := NULL;
            v_rescored := TRUE;
            v_changed := TRUE;
        END IF;
        IF v_model THEN
            m_leads := array_append(m_leads, v_lead_id);
        END IF;
        IF v_created THEN
            NULL;
        ELSIF v_email IS NULL AND v_phone IS NULL AND v_lead_id = v_linked_id AND v_score = v_linked_score
              AND (v_linked_named OR ev->>'name' IS NULL) AND (v_linked_procedure OR ev->>'procedure_name' IS NULL) THEN
            -- Nothing the lead shows changes: only last_interaction_at, written after the loop.
            t_leads := array_append(t_leads, v_lead_id);
            t_times := array_append(t_times, GREATEST((ev->>'occurred_at')::TIMESTAMPTZ, v_last_at));
            v_rescored := FALSE;
            v_changed := FALSE;
        ELSE
            UPDATE leads l SET
                patient_name = n.patient_name, procedure_name = n.procedure_name,
                email = n.email, email_normalized = n.email_normalized,
                mobile_number = n.mobile_number, phone_normalized = n.phone_normalized,
                last_interaction_at = n.last_interaction_at,
                lead_score = v_score, engagement_level = lead_engagement(v_score),
                updated_at = CASE WHEN n.filled OR n.old_score <> v_score THEN now() ELSE l.updated_at END
            FROM (
                SELECT f.*, f.patient_name IS DISTINCT FROM o.patient_name
                            OR f.procedure_name IS DISTINCT FROM o.procedure_name
                            OR f.email IS DISTINCT FROM o.email
                            OR f.mobile_number IS DISTINCT FROM o.mobile_number AS filled,
                       o.lead_score AS old_score
                FROM leads o, LATERAL (
                    SELECT COALESCE(o.patient_name, ev->>'name') AS patient_name,
                           COALESCE(o.procedure_name, ev->>'procedure_name') AS procedure_name,
                           CASE WHEN fill_email THEN ev->>'email' ELSE o.email END AS email,
                           CASE WHEN fill_email THEN v_email ELSE o.email_normalized END AS email_normalized,
                           CASE WHEN fill_phone THEN ev->>'phone' ELSE o.mobile_number END AS mobile_number,
                           CASE WHEN fill_phone THEN v_phone ELSE o.phone_normalized END AS phone_normalized,
                           GREATEST(o.last_interaction_at, (ev->>'occurred_at')::TIMESTAMPTZ, v_last_at) AS last_interaction_at
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
            RETURNING lead_json(l), n.old_score, n.filled
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
            o_bodies := array_append(o_bodies, lead_scored_message(
                v_lead_id, v_interaction, v_event, v_score, v_old_score, v_lines, v_json));
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

    -- 7. With an active model, the touched leads' probabilities, once each, as the batch leaves them; the leads
    --    that only had a visit get their last_interaction_at in the same write (lead_predict_batch). Without
    --    one, those leads' last_interaction_at alone.
    IF v_model AND cardinality(m_leads) > 0 THEN
        v_messages := cardinality(o_keys);
        SELECT p.keys, p.bodies INTO o_keys, o_bodies FROM lead_predict_batch(m_leads, o_keys, o_bodies, t_leads, t_times) p;
        leads_updated := leads_updated + cardinality(o_keys) - v_messages;
    ELSE
        PERFORM lead_note_visits(t_leads, t_times);
    END IF;

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
    SELECT utc_day(l.created_at), COALESCE(l.source, 'unknown'), l.status, pg_backend_pid() % 64, count(*)
    FROM unnest(c_leads) AS c(id)
    CROSS JOIN LATERAL (SELECT created_at, source, status FROM leads WHERE leads.id = c.id LIMIT 1) l
    GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (day, source, status, shard) DO UPDATE SET leads = lead_daily.leads + EXCLUDED.leads;
    RETURN NEXT;
END
$$;

DROP FUNCTION lead_predict_batch(BIGINT[], TEXT[], JSONB[]);
