-- The scorer's batch function, set-based: all interactions of a batch are inserted by one statement and
-- only the interactions that can touch a lead (a contact, or a session that already has a lead) go through
-- the per-event identity logic. Same contract as 002.

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
    v_ids         BIGINT[];
    v_event_ids   UUID[];
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

    -- 1. Every interaction in one statement; a known event_id (redelivery, replay) is skipped entirely.
    WITH new_rows AS (
        INSERT INTO user_interactions (event_id, session_id, user_id, interaction_type, source_page, data, score,
                                       score_breakdown, occurred_at, received_at)
        SELECT (e.value->>'event_id')::UUID, e.value->>'session_id', (e.value->>'user_id')::BIGINT, e.value->>'type',
               e.value->>'source_page', COALESCE(e.value->'data', '{}'::jsonb), (e.value->>'score')::INTEGER,
               e.value->'breakdown', (e.value->>'occurred_at')::TIMESTAMPTZ, (e.value->>'received_at')::TIMESTAMPTZ
        FROM jsonb_array_elements(p_events) WITH ORDINALITY AS e(value, position)
        ORDER BY e.position
        ON CONFLICT (event_id) DO NOTHING
        RETURNING id, event_id
    )
    SELECT COALESCE(array_agg(id), '{}'), COALESCE(array_agg(event_id), '{}') INTO v_ids, v_event_ids FROM new_rows;
    inserted := cardinality(v_ids);
    duplicates := jsonb_array_length(p_events) - inserted;

    -- 2. Lead work, in order, only for new interactions that carry a contact or whose session has a lead.
    FOR ev, v_interaction IN
        SELECT e.value, n.id
        FROM unnest(v_ids, v_event_ids) AS n(id, event_id)
        JOIN jsonb_array_elements(p_events) WITH ORDINALITY AS e(value, position)
          ON (e.value->>'event_id')::UUID = n.event_id
        WHERE e.value->>'email_normalized' IS NOT NULL OR e.value->>'phone_normalized' IS NOT NULL
           OR EXISTS (SELECT 1 FROM session_leads sl WHERE sl.session_id = e.value->>'session_id')
        ORDER BY e.position
    LOOP
        v_event := (ev->>'event_id')::UUID;
        v_session := ev->>'session_id';

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
