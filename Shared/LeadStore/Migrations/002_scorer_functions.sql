-- The scorer's write path: one call per batch of interactions, inside the batch's transaction.
-- Scores, normal forms and lead fields are computed by the scorer (Swift, unit-tested); these functions
-- persist them with the identity rules of CONTRACT section 7 and write the outgoing messages to the outbox.

CREATE OR REPLACE FUNCTION lead_is_open(status TEXT) RETURNS BOOLEAN
LANGUAGE sql IMMUTABLE AS $$ SELECT status IN ('new', 'contacted', 'booked') $$;

CREATE OR REPLACE FUNCTION lead_engagement(score INTEGER) RETURNS TEXT
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN score >= 70 THEN 'high' WHEN score >= 40 THEN 'medium' ELSE 'low' END
$$;

-- The lead as `lead.created` / `lead.updated` carry it (CONTRACT section 4).
CREATE OR REPLACE FUNCTION lead_json(l leads) RETURNS JSONB
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', l.id, 'patient_name', l.patient_name, 'mobile_number', l.mobile_number, 'email', l.email,
        'procedure_name', l.procedure_name, 'source', l.source, 'message', l.message,
        'interaction_id', l.interaction_id, 'lead_score', l.lead_score, 'engagement_level', l.engagement_level,
        'session_id', l.session_id, 'status', l.status, 'conversion_probability', l.conversion_probability,
        'created_at', l.created_at, 'updated_at', l.updated_at)
$$;

CREATE OR REPLACE FUNCTION outbox_add(p_exchange TEXT, p_routing_key TEXT, p_body JSONB) RETURNS VOID
LANGUAGE sql AS $$
    INSERT INTO outbox (exchange, routing_key, body) VALUES (p_exchange, p_routing_key, p_body)
$$;

CREATE OR REPLACE FUNCTION lead_log_conflict(p_event UUID, p_session TEXT, p_lead BIGINT, p_other BIGINT, p_reason TEXT)
RETURNS VOID LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO identity_conflicts (event_id, session_id, lead_id, other_lead_id, reason)
    VALUES (p_event, p_session, p_lead, p_other, p_reason);
    RAISE LOG 'lead identity conflict: % (event %, lead %, other lead %)', p_reason, p_event, p_lead, p_other;
END
$$;

-- Recomputes a lead's score from its interactions: the best interaction's lines, +5 per further distinct
-- type, capped at 100. On a change: ledger rows that add up to the score, and `lead.scored`.
-- Returns whether the score changed.
CREATE OR REPLACE FUNCTION lead_rescore(p_lead BIGINT, p_interaction BIGINT, p_event UUID, p_created BOOLEAN)
RETURNS BOOLEAN LANGUAGE plpgsql AS $$
DECLARE
    v_types   INTEGER;
    v_lines   JSONB;
    v_sum     INTEGER;
    v_score   INTEGER;
    v_old     INTEGER;
    v_lead    leads;
BEGIN
    SELECT count(DISTINCT interaction_type) INTO v_types FROM user_interactions WHERE lead_id = p_lead;
    SELECT COALESCE(jsonb_agg(line) FILTER (WHERE line->>'rule' <> 'cap'), '[]'::jsonb) INTO v_lines
    FROM (
        SELECT score_breakdown FROM user_interactions
        WHERE lead_id = p_lead ORDER BY score DESC, id LIMIT 1
    ) best, jsonb_array_elements(COALESCE(best.score_breakdown, '[]'::jsonb)) AS line;
    IF v_types > 1 THEN
        v_lines := v_lines || jsonb_build_array(jsonb_build_object('rule', 'distinct_types', 'points', 5 * (v_types - 1)));
    END IF;
    SELECT COALESCE(sum((line->>'points')::INTEGER), 0) INTO v_sum FROM jsonb_array_elements(v_lines) AS line;
    IF v_sum > 100 THEN
        v_lines := v_lines || jsonb_build_array(jsonb_build_object('rule', 'cap', 'points', 100 - v_sum));
    END IF;
    v_score := LEAST(GREATEST(v_sum, 0), 100);

    SELECT lead_score INTO v_old FROM leads WHERE id = p_lead;
    IF NOT p_created AND v_old = v_score THEN
        RETURN FALSE;
    END IF;
    UPDATE leads SET lead_score = v_score, engagement_level = lead_engagement(v_score), updated_at = now()
    WHERE id = p_lead RETURNING * INTO v_lead;
    INSERT INTO lead_score_ledger (lead_id, event_id, interaction_id, rule, points, lead_score)
    SELECT p_lead, p_event, p_interaction, line->>'rule', (line->>'points')::INTEGER, v_score
    FROM jsonb_array_elements(v_lines) AS line;
    PERFORM outbox_add('leads.events', 'lead.scored', jsonb_build_object(
        'lead_id', p_lead, 'interaction_id', p_interaction, 'event_id', p_event,
        'lead_score', v_score, 'previous_score', CASE WHEN p_created THEN NULL ELSE v_old END,
        'engagement_level', v_lead.engagement_level, 'breakdown', v_lines,
        'source', v_lead.source, 'procedure_name', v_lead.procedure_name,
        'conversion_probability', v_lead.conversion_probability));
    RETURN TRUE;
END
$$;

-- Processes a batch of scored interactions (a JSON array, in order). Each element has the event's fields
-- plus: score, breakdown, email_normalized, phone_normalized, can_create, source, procedure_name, message,
-- name, email, phone. A redelivered event (known event_id) changes nothing.
CREATE OR REPLACE FUNCTION lead_process_events(p_events JSONB)
RETURNS TABLE (inserted INTEGER, duplicates INTEGER, leads_created INTEGER, leads_updated INTEGER)
LANGUAGE plpgsql AS $$
DECLARE
    ev            JSONB;
    v_event       UUID;
    v_session     TEXT;
    v_email       TEXT;
    v_phone       TEXT;
    v_interaction BIGINT;
    v_lead_id     BIGINT;
    v_other_id    BIGINT;
    v_linked_id   BIGINT;
    v_lead        leads;
    v_before      JSONB;
    v_created     BOOLEAN;
    v_rescored    BOOLEAN;
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

    FOR ev IN SELECT value FROM jsonb_array_elements(p_events) LOOP
        v_event := (ev->>'event_id')::UUID;
        v_session := ev->>'session_id';
        INSERT INTO user_interactions (event_id, session_id, user_id, interaction_type, source_page, data, score,
                                       score_breakdown, occurred_at, received_at)
        VALUES (v_event, v_session, (ev->>'user_id')::BIGINT, ev->>'type', ev->>'source_page',
                COALESCE(ev->'data', '{}'::jsonb), (ev->>'score')::INTEGER, ev->'breakdown',
                (ev->>'occurred_at')::TIMESTAMPTZ, (ev->>'received_at')::TIMESTAMPTZ)
        ON CONFLICT (event_id) DO NOTHING
        RETURNING id INTO v_interaction;
        IF v_interaction IS NULL THEN
            duplicates := duplicates + 1;
            CONTINUE;
        END IF;
        inserted := inserted + 1;

        v_email := ev->>'email_normalized';
        v_phone := ev->>'phone_normalized';
        v_lead_id := NULL;
        v_other_id := NULL;

        -- 1. The person, by contact.
        IF v_email IS NOT NULL THEN
            SELECT id INTO v_lead_id FROM leads WHERE email_normalized = v_email AND lead_is_open(status);
        END IF;
        IF v_phone IS NOT NULL THEN
            SELECT id INTO v_other_id FROM leads WHERE phone_normalized = v_phone AND lead_is_open(status);
            IF v_lead_id IS NULL THEN
                v_lead_id := v_other_id;
            ELSIF v_other_id IS NOT NULL AND v_other_id <> v_lead_id THEN
                PERFORM lead_log_conflict(v_event, v_session, v_lead_id, v_other_id,
                                          'email and phone belong to two different leads');
            END IF;
        END IF;

        -- 2. The session's lead, unless the contact says this is somebody else.
        SELECT sl.lead_id INTO v_linked_id
        FROM session_leads sl JOIN leads l ON l.id = sl.lead_id
        WHERE sl.session_id = v_session AND lead_is_open(l.status);
        IF v_lead_id IS NULL AND v_linked_id IS NOT NULL THEN
            SELECT * INTO v_lead FROM leads WHERE id = v_linked_id;
            IF (v_email IS NOT NULL AND v_lead.email_normalized IS NOT NULL AND v_lead.email_normalized <> v_email)
               OR (v_phone IS NOT NULL AND v_lead.phone_normalized IS NOT NULL AND v_lead.phone_normalized <> v_phone) THEN
                PERFORM lead_log_conflict(v_event, v_session, v_linked_id, NULL,
                                          'session shared by two identified people');
            ELSE
                v_lead_id := v_linked_id;
            END IF;
        END IF;

        -- 3. Create, or fill in what the lead did not know yet.
        v_created := FALSE;
        IF v_lead_id IS NULL THEN
            IF NOT (ev->>'can_create')::BOOLEAN THEN
                CONTINUE;
            END IF;
            INSERT INTO leads (patient_name, mobile_number, email, procedure_name, source, message, interaction_id,
                               lead_score, engagement_level, session_id, email_normalized, phone_normalized,
                               last_interaction_at)
            VALUES (ev->>'name', CASE WHEN v_phone IS NOT NULL THEN ev->>'phone' END,
                    CASE WHEN v_email IS NOT NULL THEN ev->>'email' END, ev->>'procedure_name', ev->>'source',
                    ev->>'message', v_interaction, 0, 'low', v_session, v_email, v_phone,
                    (ev->>'occurred_at')::TIMESTAMPTZ)
            RETURNING id INTO v_lead_id;
            v_created := TRUE;
            leads_created := leads_created + 1;
            v_before := NULL;
        ELSE
            SELECT lead_json(l) - 'updated_at' INTO v_before FROM leads l WHERE id = v_lead_id;
            UPDATE leads l SET
                patient_name = COALESCE(l.patient_name, ev->>'name'),
                procedure_name = COALESCE(l.procedure_name, ev->>'procedure_name'),
                email = CASE WHEN l.email_normalized IS NULL AND v_email IS NOT NULL AND NOT EXISTS (
                            SELECT 1 FROM leads o WHERE o.email_normalized = v_email AND lead_is_open(o.status))
                        THEN ev->>'email' ELSE l.email END,
                email_normalized = CASE WHEN l.email_normalized IS NULL AND v_email IS NOT NULL AND NOT EXISTS (
                            SELECT 1 FROM leads o WHERE o.email_normalized = v_email AND lead_is_open(o.status))
                        THEN v_email ELSE l.email_normalized END,
                mobile_number = CASE WHEN l.phone_normalized IS NULL AND v_phone IS NOT NULL AND NOT EXISTS (
                            SELECT 1 FROM leads o WHERE o.phone_normalized = v_phone AND lead_is_open(o.status))
                        THEN ev->>'phone' ELSE l.mobile_number END,
                phone_normalized = CASE WHEN l.phone_normalized IS NULL AND v_phone IS NOT NULL AND NOT EXISTS (
                            SELECT 1 FROM leads o WHERE o.phone_normalized = v_phone AND lead_is_open(o.status))
                        THEN v_phone ELSE l.phone_normalized END,
                last_interaction_at = GREATEST(l.last_interaction_at, (ev->>'occurred_at')::TIMESTAMPTZ)
            WHERE l.id = v_lead_id;
        END IF;

        -- 4. The interaction, the session and the session's anonymous history join the lead.
        UPDATE user_interactions SET lead_id = v_lead_id, converted_to_lead = TRUE WHERE id = v_interaction;
        IF v_linked_id IS NULL THEN
            INSERT INTO session_leads (session_id, lead_id) VALUES (v_session, v_lead_id)
            ON CONFLICT (session_id) DO UPDATE SET lead_id = EXCLUDED.lead_id, linked_at = now();
            v_linked_id := v_lead_id;
        ELSIF v_linked_id <> v_lead_id THEN
            PERFORM lead_log_conflict(v_event, v_session, v_lead_id, v_linked_id,
                                      'session already belongs to another lead');
        END IF;
        IF v_linked_id = v_lead_id THEN
            UPDATE user_interactions SET lead_id = v_lead_id, converted_to_lead = TRUE
            WHERE session_id = v_session AND lead_id IS NULL;
        END IF;

        -- 5. Score, and tell the world.
        v_rescored := lead_rescore(v_lead_id, v_interaction, v_event, v_created);
        SELECT * INTO v_lead FROM leads WHERE id = v_lead_id;
        IF v_created THEN
            PERFORM outbox_add('leads.events', 'lead.created', lead_json(v_lead));
        ELSIF v_rescored OR v_before IS DISTINCT FROM (lead_json(v_lead) - 'updated_at') THEN
            UPDATE leads SET updated_at = now() WHERE id = v_lead_id RETURNING * INTO v_lead;
            PERFORM outbox_add('leads.events', 'lead.updated', lead_json(v_lead));
            leads_updated := leads_updated + 1;
        END IF;
    END LOOP;
    RETURN NEXT;
END
$$;
