-- Predictive scoring per batch. With an active model the scorer computed each lead's features and probability
-- in the loop over a batch's events, once per event: four statements, about 150 µs a lead on this machine
-- (115 of them the features). Now the loop only notes the leads it touched, and one statement at the end of
-- the batch computes their features set-based (lead_features_for, the same definition training uses) and
-- writes the probabilities: a lead touched by several events of a batch is predicted once, with the features
-- it has when the batch commits. The feature vector also does its arithmetic in float8: EXTRACT returns
-- numeric, and two numeric ln() calls were half of its cost.

CREATE OR REPLACE FUNCTION lead_feature_vector(
    p_score INTEGER, p_counts BIGINT[], p_types BIGINT, p_source TEXT,
    p_budget BOOLEAN, p_urgency BOOLEAN, p_multiple BOOLEAN,
    p_created TIMESTAMPTZ, p_first TIMESTAMPTZ, p_last TIMESTAMPTZ, p_sessions BIGINT,
    p_prompted BOOLEAN, p_variant_b BOOLEAN, p_as_of TIMESTAMPTZ
) RETURNS DOUBLE PRECISION[] LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY[
        p_score / 100.0::DOUBLE PRECISION,
        ln(1 + COALESCE(p_counts[1], 0)), ln(1 + COALESCE(p_counts[2], 0)), ln(1 + COALESCE(p_counts[3], 0)),
        ln(1 + COALESCE(p_counts[4], 0)), ln(1 + COALESCE(p_counts[5], 0)), ln(1 + COALESCE(p_counts[6], 0)),
        ln(1 + COALESCE(p_counts[7], 0)), ln(1 + COALESCE(p_counts[8], 0)), ln(1 + COALESCE(p_counts[9], 0)),
        ln(1 + COALESCE(p_counts[10], 0)), ln(1 + COALESCE(p_counts[11], 0)),
        COALESCE(p_types, 0),
        (p_source IS NOT DISTINCT FROM 'AI Recommendation')::int, (p_source IS NOT DISTINCT FROM 'Face Analysis')::int,
        (p_source IS NOT DISTINCT FROM 'Cost Calculator')::int, (p_source IS NOT DISTINCT FROM 'Appointment Booking')::int,
        (p_source IS NOT DISTINCT FROM 'Package Inquiry')::int, (p_source IS NOT DISTINCT FROM 'Consultation')::int,
        COALESCE(p_budget, false)::int, COALESCE(p_urgency, false)::int, COALESCE(p_multiple, false)::int,
        ln(1 + GREATEST(0, COALESCE(date_part('epoch', p_created - p_first) / 3600, 0))),
        ln(1 + COALESCE(p_sessions, 0)),
        COALESCE(p_prompted, false)::int, COALESCE(p_variant_b, false)::int,
        ln(1 + GREATEST(0, COALESCE(date_part('epoch', p_as_of - p_last) / 86400, 0)))
    ]::DOUBLE PRECISION[]
$$;

-- The score modifiers an interaction's breakdown shows, as bits: 1 budget_range:high, 2 urgency:immediate,
-- 4 multiple_procedures. The scorer stores them with each interaction (user_interactions.modifiers, computed
-- from the same breakdown in Swift: ScoredInteraction); rows written before this migration have NULL there
-- and are read through this function.
CREATE FUNCTION lead_modifiers(p_breakdown JSONB) RETURNS SMALLINT LANGUAGE sql IMMUTABLE AS $$
    SELECT ((p_breakdown @> '[{"rule": "budget_range:high"}]')::int
            + 2 * (p_breakdown @> '[{"rule": "urgency:immediate"}]')::int
            + 4 * (p_breakdown @> '[{"rule": "multiple_procedures"}]')::int)::SMALLINT
$$;

ALTER TABLE user_interactions ADD COLUMN modifiers SMALLINT;

-- Leads' features as of a time each: 009's, computed in two hash aggregations (per lead and session, then per
-- lead) instead of count(DISTINCT), which sorted every lead's rows twice; the modifiers come from the stored
-- bits instead of three jsonb containment tests a row; distinct_types counts the eleven types that have rows
-- (every interaction is one of them). Same values as 009's (to 1e-12 on 5,000 bench leads). Set-based, the
-- index probes per lead dominate: 5,000 leads took 220-250 ms before and 194-237 ms after.
CREATE OR REPLACE FUNCTION lead_features_for(p_leads BIGINT[], p_scores INTEGER[], p_as_of TIMESTAMPTZ[])
RETURNS TABLE (lead_id BIGINT, features DOUBLE PRECISION[]) LANGUAGE sql STABLE AS $$
    WITH wanted AS (
        SELECT * FROM unnest(p_leads, p_scores, p_as_of) AS w(lead_id, score, as_of)
    ), ids AS (
        SELECT DISTINCT lead_id FROM wanted
    ), per_session AS (
        SELECT u.lead_id,
            count(*) FILTER (WHERE interaction_type = 'ai_recommendation') AS c1,
            count(*) FILTER (WHERE interaction_type = 'face_analysis') AS c2,
            count(*) FILTER (WHERE interaction_type = 'cost_calculator') AS c3,
            count(*) FILTER (WHERE interaction_type = 'appointment_booking') AS c4,
            count(*) FILTER (WHERE interaction_type = 'package_inquiry') AS c5,
            count(*) FILTER (WHERE interaction_type = 'consultation') AS c6,
            count(*) FILTER (WHERE interaction_type = 'search') AS c7,
            count(*) FILTER (WHERE interaction_type = 'page_view') AS c8,
            count(*) FILTER (WHERE interaction_type = 'registration') AS c9,
            count(*) FILTER (WHERE interaction_type = 'community_engagement') AS c10,
            count(*) FILTER (WHERE interaction_type = 'prompt_dismissed') AS c11,
            bit_or(COALESCE(u.modifiers, lead_modifiers(u.score_breakdown))) AS modifiers,
            min(occurred_at) AS first_at,
            max(occurred_at) AS last_at
        FROM user_interactions u JOIN ids ON ids.lead_id = u.lead_id
        GROUP BY u.lead_id, u.session_id
    ), ui AS (
        SELECT lead_id,
            ARRAY[sum(c1), sum(c2), sum(c3), sum(c4), sum(c5), sum(c6), sum(c7), sum(c8), sum(c9), sum(c10), sum(c11)]::BIGINT[] AS counts,
            (sum(c1) > 0)::int + (sum(c2) > 0)::int + (sum(c3) > 0)::int + (sum(c4) > 0)::int + (sum(c5) > 0)::int
              + (sum(c6) > 0)::int + (sum(c7) > 0)::int + (sum(c8) > 0)::int + (sum(c9) > 0)::int
              + (sum(c10) > 0)::int + (sum(c11) > 0)::int AS types,
            bit_or(modifiers) AS modifiers,
            min(first_at) AS first_at,
            max(last_at) AS last_at,
            count(*) AS sessions
        FROM per_session GROUP BY lead_id
    ), p AS (
        SELECT sl.lead_id, count(cp.id) > 0 AS prompted, bool_or(cs.variant = 'B') AS variant_b
        FROM session_leads sl
        JOIN ids ON ids.lead_id = sl.lead_id
        LEFT JOIN conversion_prompts cp ON cp.session_id = sl.session_id
        LEFT JOIN conversion_sessions cs ON cs.session_id = sl.session_id
        GROUP BY sl.lead_id
    )
    SELECT w.lead_id, lead_feature_vector(
        w.score, ui.counts, ui.types, l.source, (ui.modifiers & 1) <> 0, (ui.modifiers & 2) <> 0, (ui.modifiers & 4) <> 0,
        l.created_at, ui.first_at, ui.last_at, ui.sessions, p.prompted, p.variant_b, w.as_of)
    FROM wanted w
    JOIN leads l ON l.id = w.lead_id
    LEFT JOIN ui ON ui.lead_id = w.lead_id
    LEFT JOIN p ON p.lead_id = w.lead_id
$$;

-- One lead's features: lead_features_for for that lead (009's plpgsql copy was the scorer's per-lead path).
CREATE OR REPLACE FUNCTION lead_features(p_lead BIGINT, p_score INTEGER, p_as_of TIMESTAMPTZ)
RETURNS DOUBLE PRECISION[] LANGUAGE sql STABLE AS $$
    SELECT features FROM lead_features_for(ARRAY[p_lead], ARRAY[p_score], ARRAY[p_as_of])
$$;

-- The probability a model gives these features; the linear term is clamped so exp() cannot overflow. A loop in
-- plpgsql: the same sum as a SQL function over unnest() ran a query per call, 40 µs a lead.
CREATE FUNCTION lead_model_probability(
    p_weights DOUBLE PRECISION[], p_means DOUBLE PRECISION[], p_scales DOUBLE PRECISION[], p_intercept DOUBLE PRECISION,
    p_features DOUBLE PRECISION[]
) RETURNS DOUBLE PRECISION LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    z DOUBLE PRECISION := p_intercept;
BEGIN
    FOR i IN 1 .. cardinality(p_weights) LOOP
        z := z + p_weights[i] * (COALESCE(p_features[i], 0) - p_means[i]) / p_scales[i];
    END LOOP;
    RETURN 1 / (1 + exp(-LEAST(30, GREATEST(-30, z))));
END
$$;

-- The active model's probability for these features; NULL without an active model.
CREATE OR REPLACE FUNCTION lead_predict_features(p_features DOUBLE PRECISION[]) RETURNS DOUBLE PRECISION
LANGUAGE sql STABLE AS $$
    SELECT lead_model_probability(m.weights, m.means, m.scales, m.intercept, p_features)
    FROM prediction_models m WHERE m.active
$$;

-- Many leads' probabilities under the active model, their features as of one time; no rows without one.
CREATE FUNCTION lead_predictions(p_leads BIGINT[], p_scores INTEGER[], p_as_of TIMESTAMPTZ)
RETURNS TABLE (lead_id BIGINT, probability DOUBLE PRECISION) LANGUAGE sql STABLE AS $$
    SELECT f.lead_id, lead_model_probability(m.weights, m.means, m.scales, m.intercept, f.features)
    FROM prediction_models m,
         lead_features_for(p_leads, p_scores, array_fill(p_as_of, ARRAY[cardinality(p_leads)])) f
    WHERE m.active
$$;

-- Step 7 of the batch: writes the probabilities of the leads a batch touched (p_leads, repeats allowed; each
-- with the score the batch left it), and returns the batch's messages with them: a lead.created or
-- lead.updated body about such a lead becomes its final row, lead.scored gets the new
-- conversion_probability, and a lead whose probability changed without any such message gets lead.updated.
CREATE FUNCTION lead_predict_batch(p_leads BIGINT[], p_keys TEXT[], p_bodies JSONB[])
RETURNS TABLE (keys TEXT[], bodies JSONB[]) LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_leads  BIGINT[];
    v_scores INTEGER[];
    v_probs  DOUBLE PRECISION[];
    v_json   JSONB[];
BEGIN
    keys := p_keys;
    bodies := p_bodies;
    SELECT array_agg(id ORDER BY id), array_agg(lead_score ORDER BY id) INTO v_leads, v_scores
    FROM leads WHERE id = ANY(p_leads);
    -- MATERIALIZED: inlined, the model's sum ran twice a lead (in the join filter and in SET).
    WITH predicted AS MATERIALIZED (
        SELECT * FROM lead_predictions(v_leads, v_scores, now())
    ), changed AS (
        UPDATE leads l SET conversion_probability = p.probability, updated_at = now()
        FROM predicted p
        WHERE l.id = p.lead_id AND l.conversion_probability IS DISTINCT FROM p.probability
        RETURNING l.id, l.conversion_probability, lead_json(l) AS body
    )
    SELECT COALESCE(array_agg(id), '{}'), array_agg(conversion_probability), array_agg(body)
    INTO v_leads, v_probs, v_json FROM changed;
    IF cardinality(v_leads) = 0 THEN
        RETURN NEXT;
        RETURN;
    END IF;
    SELECT array_agg(
               CASE WHEN c.id IS NULL THEN o.body
                    WHEN o.key = 'lead.scored' THEN o.body || jsonb_build_object('conversion_probability', c.probability)
                    ELSE c.body END ORDER BY o.position),
           array_agg(o.key ORDER BY o.position)
    INTO bodies, keys
    FROM unnest(p_keys, p_bodies) WITH ORDINALITY AS o(key, body, position)
    LEFT JOIN unnest(v_leads, v_probs, v_json) AS c(id, probability, body)
      ON c.id = COALESCE(o.body->>'lead_id', o.body->>'id')::BIGINT;
    SELECT keys || COALESCE(array_agg('lead.updated'::TEXT ORDER BY c.id), '{}'),
           bodies || COALESCE(array_agg(c.body ORDER BY c.id), '{}')
    INTO keys, bodies
    FROM unnest(v_leads, v_json) AS c(id, body)
    WHERE NOT EXISTS (
        SELECT 1 FROM unnest(p_keys, p_bodies) AS o(key, body)
        WHERE o.key IN ('lead.created', 'lead.updated') AND (o.body->>'id')::BIGINT = c.id);
    RETURN NEXT;
END
$$;

-- 013's batch function, without the probability in its loop: it notes the leads it touched (m_leads) and
-- predicts them once, in step 7.
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
    v_linked_named BOOLEAN;
    v_linked_procedure BOOLEAN;
    v_first_at     TIMESTAMPTZ;
    v_created      BOOLEAN;
    v_changed      BOOLEAN;
    v_rescored     BOOLEAN;
    v_old_score    INTEGER;
    v_types        INTEGER;
    v_best         JSONB;
    v_lines        JSONB;
    v_sum          INTEGER;
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
                                       score_breakdown, modifiers, occurred_at, received_at, lead_id, converted_to_lead)
        SELECT (e.value->>'event_id')::UUID, e.value->>'session_id', (e.value->>'user_id')::BIGINT, e.value->>'type',
               e.value->>'source_page', COALESCE(e.value->'data', '{}'::jsonb), (e.value->>'score')::INTEGER,
               e.value->'breakdown', (e.value->>'modifiers')::SMALLINT, (e.value->>'occurred_at')::TIMESTAMPTZ, (e.value->>'received_at')::TIMESTAMPTZ,
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
            t_times := array_append(t_times, (ev->>'occurred_at')::TIMESTAMPTZ);
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
    -- 7. With an active model, the touched leads' probabilities, once each, as the batch leaves them.
    IF v_model AND cardinality(m_leads) > 0 THEN
        v_messages := cardinality(o_keys);
        SELECT p.keys, p.bodies INTO o_keys, o_bodies FROM lead_predict_batch(m_leads, o_keys, o_bodies) p;
        leads_updated := leads_updated + cardinality(o_keys) - v_messages;
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
    SELECT utc_day(created_at), COALESCE(source, 'unknown'), status, pg_backend_pid() % 64, count(*)
    FROM leads WHERE id = ANY(c_leads) GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (day, source, status, shard) DO UPDATE SET leads = lead_daily.leads + EXCLUDED.leads;
    RETURN NEXT;
END
$$;
