-- The prediction step writes each lead once and computes the probability without a plpgsql loop.
--
-- Measured with an A/B of the batch function (200 batches of 100 events about known people, each run with the
-- model and without it, rolled back; the same as make bench's scorer.x1.model A/B) on 2026-12-08: the model
-- added 64.3 us of database time per event that joins a lead with 025. Of that, per statement
-- (pg_stat_statements): the features and probability 34, the probability UPDATE 24, patching the messages 5.
--
-- 1. A lead that only had an anonymous visit in the batch was written twice with a model: its
--    last_interaction_at after the loop, then its probability. lead_predict_batch now takes those visits and
--    writes both in its one UPDATE; a lead whose probability did not move gets its last_interaction_at alone,
--    as without a model. The path without a model is unchanged (the same UPDATE, now lead_note_visits).
-- 2. lead_model_probability's loop over the feature array cost 5.3 us a lead (psql, 5,000 leads, jit off): a
--    plpgsql loop with four array subscripts a feature. The step now folds the standardization into the
--    weights once per batch (w / s, and b - sum(w m / s)) and computes the probability with lead_logistic, a
--    SQL expression PostgreSQL inlines: 1.5 us. The same value to ~1e-16 (the tests compare at 1e-12);
--    lead_model_probability stays for training, the tests' reference and a model of another width.

-- The leads of p_leads last seen at p_times (a lead may repeat): last_interaction_at moves forward only.
-- plpgsql, not sql: a SQL function's statement is planned again at every call, and the scorer calls this
-- once a batch (without it, 025's batch function ran 2-3 % faster on the A/B's batches).
CREATE FUNCTION lead_note_visits(p_leads BIGINT[], p_times TIMESTAMPTZ[]) RETURNS VOID
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    UPDATE leads l SET last_interaction_at = t.at
    FROM (
        SELECT lead_id, max(at) AS at FROM unnest(p_leads, p_times) AS t(lead_id, at) GROUP BY lead_id ORDER BY lead_id
    ) t
    WHERE l.id = t.lead_id AND (l.last_interaction_at IS NULL OR l.last_interaction_at < t.at);
END
$$;

-- The logistic of p_b + p_w . p_f (a missing feature counts 0), for the 27 features of lead_feature_vector, with
-- the standardization folded into p_w and p_b (lead_predict_batch). One expression, so PostgreSQL inlines it.
CREATE FUNCTION lead_logistic(p_w DOUBLE PRECISION[], p_b DOUBLE PRECISION, p_f DOUBLE PRECISION[])
RETURNS DOUBLE PRECISION LANGUAGE sql IMMUTABLE AS $$
    SELECT 1 / (1 + exp(-LEAST(30, GREATEST(-30, p_b
        + p_w[1] * COALESCE(p_f[1], 0)
        + p_w[2] * COALESCE(p_f[2], 0)
        + p_w[3] * COALESCE(p_f[3], 0)
        + p_w[4] * COALESCE(p_f[4], 0)
        + p_w[5] * COALESCE(p_f[5], 0)
        + p_w[6] * COALESCE(p_f[6], 0)
        + p_w[7] * COALESCE(p_f[7], 0)
        + p_w[8] * COALESCE(p_f[8], 0)
        + p_w[9] * COALESCE(p_f[9], 0)
        + p_w[10] * COALESCE(p_f[10], 0)
        + p_w[11] * COALESCE(p_f[11], 0)
        + p_w[12] * COALESCE(p_f[12], 0)
        + p_w[13] * COALESCE(p_f[13], 0)
        + p_w[14] * COALESCE(p_f[14], 0)
        + p_w[15] * COALESCE(p_f[15], 0)
        + p_w[16] * COALESCE(p_f[16], 0)
        + p_w[17] * COALESCE(p_f[17], 0)
        + p_w[18] * COALESCE(p_f[18], 0)
        + p_w[19] * COALESCE(p_f[19], 0)
        + p_w[20] * COALESCE(p_f[20], 0)
        + p_w[21] * COALESCE(p_f[21], 0)
        + p_w[22] * COALESCE(p_f[22], 0)
        + p_w[23] * COALESCE(p_f[23], 0)
        + p_w[24] * COALESCE(p_f[24], 0)
        + p_w[25] * COALESCE(p_f[25], 0)
        + p_w[26] * COALESCE(p_f[26], 0)
        + p_w[27] * COALESCE(p_f[27], 0)))))
$$;

-- 020's, taking the batch's visits (p_visited, at p_visited_at: leads that only had an anonymous visit, see 1)
-- and computing the probability with lead_logistic (2).
CREATE FUNCTION lead_predict_batch(
    p_leads BIGINT[], p_keys TEXT[], p_bodies JSONB[], p_visited BIGINT[], p_visited_at TIMESTAMPTZ[]
) RETURNS TABLE (keys TEXT[], bodies JSONB[]) LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_leads  BIGINT[];
    v_probs  DOUBLE PRECISION[];
    v_times  TIMESTAMPTZ[];
    v_rows   BIGINT[];
    v_extra  JSONB[];
    v_weights DOUBLE PRECISION[];
    v_means  DOUBLE PRECISION[];
    v_scales DOUBLE PRECISION[];
    v_intercept DOUBLE PRECISION;
    v_w      DOUBLE PRECISION[];
    v_b      DOUBLE PRECISION;
    v_folded BOOLEAN;
BEGIN
    keys := p_keys;
    bodies := p_bodies;
    -- Only what the probability needs (a trained model's row also holds its metrics and feature names).
    SELECT m.weights, m.means, m.scales, m.intercept INTO v_weights, v_means, v_scales, v_intercept
    FROM prediction_models m WHERE m.active;
    IF NOT FOUND THEN
        -- Deactivated since the batch looked: the visits as without a model.
        PERFORM lead_note_visits(p_visited, p_visited_at);
        RETURN NEXT;
        RETURN;
    END IF;
    v_folded := cardinality(v_weights) = 27;
    IF v_folded THEN
        v_w := ARRAY(SELECT w / s FROM unnest(v_weights, v_scales) WITH ORDINALITY AS x(w, s, n) ORDER BY n);
        v_b := v_intercept - (SELECT sum(w * mu / s) FROM unnest(v_weights, v_means, v_scales) AS x(w, mu, s));
    END IF;
    -- Each lead once, with the score the batch left it.
    v_leads := ARRAY(SELECT DISTINCT unnest(p_leads));
    SELECT COALESCE(array_agg(f.lead_id), '{}'),
           array_agg(CASE WHEN v_folded THEN lead_logistic(v_w, v_b, f.features)
                          ELSE lead_model_probability(v_weights, v_means, v_scales, v_intercept, f.features) END)
    INTO v_leads, v_probs
    -- OFFSET 0: the features stay one computed column. Flattened into this query, f.features would be
    -- lead_feature_vector's whole expression, which lead_logistic reads 27 times, and PostgreSQL then calls
    -- lead_logistic as a function for each lead instead of inlining it (30 us a lead instead of 1.5).
    FROM (SELECT * FROM lead_features_for(v_leads, NULL, array_fill(now(), ARRAY[cardinality(v_leads)])) OFFSET 0) f;
    -- The leads the batch already announces with their row (lead.created or lead.updated).
    v_rows := ARRAY(SELECT DISTINCT (o.body->>'id')::BIGINT FROM unnest(p_keys, p_bodies) AS o(key, body)
                    WHERE o.key IN ('lead.created', 'lead.updated'));
    WITH visits AS (
        SELECT lead_id, max(at) AS at FROM unnest(p_visited, p_visited_at) AS t(lead_id, at) GROUP BY lead_id
    ), changed AS (
        UPDATE leads l SET conversion_probability = p.probability, updated_at = now(),
                           last_interaction_at = GREATEST(l.last_interaction_at, p.visited_at)
        FROM (SELECT n.lead_id, n.probability, v.at AS visited_at
              FROM unnest(v_leads, v_probs) AS n(lead_id, probability) LEFT JOIN visits v ON v.lead_id = n.lead_id) p
        WHERE l.id = p.lead_id AND l.conversion_probability IS DISTINCT FROM p.probability
        RETURNING l.id, l.conversion_probability, l.updated_at,
                  CASE WHEN l.id <> ALL(v_rows) THEN lead_json(l) END AS body
    )
    SELECT COALESCE(array_agg(id ORDER BY id), '{}'), array_agg(conversion_probability ORDER BY id),
           array_agg(updated_at ORDER BY id),
           COALESCE(array_agg(body ORDER BY id) FILTER (WHERE body IS NOT NULL), '{}')
    INTO v_leads, v_probs, v_times, v_extra FROM changed;
    -- Visited leads whose probability stayed: their last_interaction_at alone.
    IF NOT p_visited <@ v_leads THEN
        PERFORM lead_note_visits(
            ARRAY(SELECT t FROM unnest(p_visited) AS t WHERE t <> ALL(v_leads)),
            ARRAY(SELECT a FROM unnest(p_visited, p_visited_at) AS x(t, a) WHERE x.t <> ALL(v_leads)));
    END IF;
    IF cardinality(v_leads) = 0 THEN
        RETURN NEXT;
        RETURN;
    END IF;
    WITH o AS (
        SELECT m.key, m.body, m.position,
               CASE WHEN m.key IN ('lead.created', 'lead.updated') THEN (m.body->>'id')::BIGINT END AS row_of,
               COALESCE(m.body->>'lead_id', m.body->>'id')::BIGINT AS about
        FROM unnest(p_keys, p_bodies) WITH ORDINALITY AS m(key, body, position)
    ), last_row AS (
        SELECT DISTINCT ON (row_of) row_of, body FROM o WHERE row_of IS NOT NULL ORDER BY row_of, position DESC
    )
    SELECT array_agg(
               CASE WHEN c.id IS NULL THEN o.body
                    WHEN o.key = 'lead.scored' THEN o.body || jsonb_build_object('conversion_probability', c.probability)
                    WHEN r.row_of IS NOT NULL THEN r.body || jsonb_build_object(
                        'conversion_probability', c.probability, 'updated_at', c.updated_at)
                    ELSE o.body END ORDER BY o.position),
           array_agg(o.key ORDER BY o.position)
    INTO bodies, keys
    FROM o
    LEFT JOIN unnest(v_leads, v_probs, v_times) AS c(id, probability, updated_at) ON c.id = o.about
    LEFT JOIN last_row r ON r.row_of = o.row_of;
    -- A lead whose probability changed without a body in the batch gets lead.updated with its row.
    keys := keys || array_fill('lead.updated'::TEXT, ARRAY[cardinality(v_extra)]);
    bodies := bodies || v_extra;
    RETURN NEXT;
END
$$;

-- 025's, with step 7 as above.
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
                       (array_agg(interaction_type ORDER BY occurred_at, id))[1], min(occurred_at)
                INTO v_types, v_best, v_first_type, v_first_at
                FROM user_interactions
                WHERE session_id = v_session AND lead_id IS NULL
                  AND (contact_key IS NULL OR id = v_interaction OR contact_key = ANY(lead_contact_keys(v_email, v_phone)));
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
