-- The prediction computed with the lead's own write. With an active model, 020's lead_predict_batch ran after
-- the batch's loop: it read every touched lead's interactions again for the features, wrote the row a second
-- time with the probability, and patched the batch's lead.created, lead.updated and lead.scored bodies with it
-- (70.8-90.2 µs a lead in the scorer benchmark, against the issue's 50).
--
-- The scorer already aggregates a lead's interactions once an event for it: for the score, over the lead's
-- interactions (a known lead) or the session's history that is about to join it (a new lead). Those scans now
-- also take the model's aggregates of the same rows (counts per type, modifier bits, first and last time,
-- whether they are all in one session), and lead_probability() turns them into the probability before the
-- lead is written, so the INSERT or UPDATE that writes the score writes the probability, and lead_json() of
-- that row (lead.created, lead.updated, lead.scored) carries it. An event that changes nothing else the lead
-- shows (the loop's shortcut, most anonymous events) does not write the row: its probability is written
-- after the loop with the later last_interaction_at the shortcut already deferred, once a lead, and announced
-- with lead.updated (step 6b). A lead written several times in a batch ends with its last event's
-- probability, as the batch leaves it, as before. lead_predict_batch stays for any other caller; the scorer
-- no longer calls it.
--
-- Same values as lead_features_for (the definition leadctl train uses): the same aggregates of the same rows;
-- whether the lead's sessions were prompted and any is in variant B, looked up in queries the scorer runs
-- anyway (the loop's first lookup, for the event's session; the set-based creation's CTE) for a new lead
-- (the session it is about to be linked to, or none when that session is another lead's) and for a known
-- lead whose interactions are all in the event's session, linked to it, and otherwise over the lead's
-- sessions within the scan's own statement; the session count exact; and the probability as of the write's now(), which is the
-- row's updated_at whenever the probability changed. ScorerBatchTests checks both creation paths, known
-- leads, stitched and prompted sessions against lead_features_for, and that the last lead.created or
-- lead.updated about each lead is its row.
--
-- Measured in the scorer benchmark (50,000 events, 30 % with contact, ~21,000 lead writes with a model):
-- lead_probability 15.1-20.1 µs a lead written, where step 7 took 70.8 in the same benchmark. But the model's
-- whole cost did not move: on 200 identical batches of 100 events, each run with the model and without it
-- (rolled back, alternating), it adds 90.2 µs of database time per event that joins a lead here and 90.9
-- with 025. The same A/B in psql (100 batches a run, eight alternating pairs, ±0.3 s in 3.5 s runs) put most
-- of that in the lookups for leads with several sessions (the session count and the prompts over all their
-- sessions, as two more statements an event): without them the model added 0.24-0.27 s a run against
-- 0.42-0.68 s; taking out the probability itself or the lead.updated announcements moved nothing beyond the
-- noise. Those lookups are now part of the scan's statement (0.25-0.52 s, mean 0.40, over four runs). Kept
-- because the row is written once and a lead's interactions are read once, where step 7 read them again
-- however long the lead's history.
-- Two things cost more than they saved on the way and are not here: a full UPDATE for every shortcut event
-- whose probability moved (the row written and rebuilt as JSON per event), and the general session lookup as
-- a SQL function (planned on every call: 300 µs a call).
--
-- Without a model nothing of this runs: the scans are 025's (the known lead's) or leave the model's
-- aggregates out (FILTER), and a lead's stored probability is left as it was (as before: deactivating a
-- model does not clear them). Computed always, those aggregates made the batch function 13-15 % slower
-- without a model than 025's, in a psql A/B that alternates the two functions batch by batch (100 batches of
-- 100 events, rolled back); gated, 2-5 % (2.17/2.29, 2.67/2.72, 2.53/2.61 s).

-- The number of each of lead_feature_vector's eleven interaction types in p_types (lead_features_for's
-- count(*) FILTER per type): one pass of each over a lead's few types, inlined into the caller's query.
CREATE FUNCTION lead_type_counts(p_types TEXT[]) RETURNS BIGINT[] LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY[
        cardinality(array_positions(p_types, 'ai_recommendation')),
        cardinality(array_positions(p_types, 'face_analysis')),
        cardinality(array_positions(p_types, 'cost_calculator')),
        cardinality(array_positions(p_types, 'appointment_booking')),
        cardinality(array_positions(p_types, 'package_inquiry')),
        cardinality(array_positions(p_types, 'consultation')),
        cardinality(array_positions(p_types, 'search')),
        cardinality(array_positions(p_types, 'page_view')),
        cardinality(array_positions(p_types, 'registration')),
        cardinality(array_positions(p_types, 'community_engagement')),
        cardinality(array_positions(p_types, 'prompt_dismissed'))]::BIGINT[]
$$;

-- The probability model p_model gives a lead with these aggregates, as of p_as_of: lead_model_probability of
-- lead_feature_vector, in one function (a nested plpgsql call a lead saved). The callers look up whether the
-- lead's sessions were prompted (and any is in variant B) in queries they run anyway, as lead_features_for does
-- (a separate query here cost 10-20 µs a lead on an idle database, most of it starting the queries).
CREATE FUNCTION lead_probability(
    p_weights DOUBLE PRECISION[], p_means DOUBLE PRECISION[], p_scales DOUBLE PRECISION[], p_intercept DOUBLE PRECISION,
    p_score INTEGER, p_source TEXT, p_created TIMESTAMPTZ,
    p_counts BIGINT[], p_types BIGINT, p_modifiers INTEGER, p_first TIMESTAMPTZ, p_last TIMESTAMPTZ,
    p_sessions BIGINT, p_prompted BOOLEAN, p_variant_b BOOLEAN, p_as_of TIMESTAMPTZ
) RETURNS DOUBLE PRECISION LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_features  DOUBLE PRECISION[];
    z           DOUBLE PRECISION := p_intercept;
BEGIN
    v_features := lead_feature_vector(
        p_score, p_counts, p_types, p_source, (p_modifiers & 1) <> 0, (p_modifiers & 2) <> 0, (p_modifiers & 4) <> 0,
        p_created, p_first, p_last, p_sessions, p_prompted, p_variant_b, p_as_of);
    FOR i IN 1 .. cardinality(p_weights) LOOP
        z := z + p_weights[i] * (COALESCE(v_features[i], 0) - p_means[i]) / p_scales[i];
    END LOOP;
    RETURN 1 / (1 + exp(-LEAST(30, GREATEST(-30, z))));
END
$$;

-- 025's, with the model's aggregates in the history scan and the probability in the INSERT.
CREATE OR REPLACE FUNCTION lead_create_alone(
    p_events JSONB, p_ids BIGINT[], p_event_ids UUID[],
    OUT o_interactions BIGINT[], OUT o_leads BIGINT[], OUT o_keys TEXT[], OUT o_bodies JSONB[]
) LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_positions BIGINT[];
    v_events    JSONB[];
    v_sessions  TEXT[];
    v_model     INTEGER;
    v_weights   DOUBLE PRECISION[];
    v_means     DOUBLE PRECISION[];
    v_scales    DOUBLE PRECISION[];
    v_intercept DOUBLE PRECISION;
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
    SELECT id, weights, means, scales, intercept INTO v_model, v_weights, v_means, v_scales, v_intercept
    FROM prediction_models WHERE active;

    WITH alone AS (
        SELECT c.position, c.interaction, c.ev, h.first_type, h.first_at, s.lines, s.score,
               CASE WHEN v_model IS NOT NULL THEN lead_probability(
                   v_weights, v_means, v_scales, v_intercept, s.score, c.ev->>'source', now(), h.counts, h.types, h.modifiers, h.first_at, h.last_at,
                   h.sessions, pv.prompted, pv.variant_b, now()) END AS probability
        FROM unnest(v_positions, o_interactions, v_events) AS c(position, interaction, ev)
        CROSS JOIN LATERAL (
            SELECT count(DISTINCT u.interaction_type)::INTEGER AS types,
                   (array_agg(u.score_breakdown ORDER BY u.score DESC, u.id))[1] AS best,
                   (array_agg(u.interaction_type ORDER BY u.occurred_at, u.id))[1] AS first_type,
                   min(u.occurred_at) AS first_at,
                   -- The model's aggregates (lead_features_for's) of the same rows: the lead's interactions.
                   lead_type_counts(array_agg(u.interaction_type) FILTER (WHERE v_model IS NOT NULL)) AS counts,
                   bit_or(COALESCE(u.modifiers, lead_modifiers(u.score_breakdown))) FILTER (WHERE v_model IS NOT NULL) AS modifiers,
                   max(u.occurred_at) FILTER (WHERE v_model IS NOT NULL) AS last_at, 1 AS sessions
            FROM user_interactions u
            WHERE u.session_id = c.ev->>'session_id' AND u.lead_id IS NULL
              AND (u.contact_key IS NULL OR u.id = c.interaction
                   OR u.contact_key = ANY(lead_contact_keys(c.ev->>'email_normalized', c.ev->>'phone_normalized')))
        ) h
        CROSS JOIN LATERAL lead_score_lines(h.best, h.types) s
        -- The session, the new lead's only one, as lead_features_for sees it once linked.
        LEFT JOIN LATERAL (
            SELECT EXISTS (SELECT 1 FROM conversion_prompts cp WHERE cp.session_id = c.ev->>'session_id') AS prompted,
                   (SELECT cs.variant = 'B' FROM conversion_sessions cs WHERE cs.session_id = c.ev->>'session_id' LIMIT 1) AS variant_b
            WHERE v_model IS NOT NULL
        ) pv ON TRUE
    ), created AS (
        INSERT INTO leads (patient_name, mobile_number, email, procedure_name, source, message, interaction_id,
                           lead_score, engagement_level, session_id, email_normalized, phone_normalized,
                           last_interaction_at, first_interaction_type, first_interaction_at, conversion_probability)
        SELECT a.ev->>'name', CASE WHEN a.ev->>'phone_normalized' IS NOT NULL THEN a.ev->>'phone' END,
               CASE WHEN a.ev->>'email_normalized' IS NOT NULL THEN a.ev->>'email' END, a.ev->>'procedure_name',
               a.ev->>'source', a.ev->>'message', a.interaction, a.score, lead_engagement(a.score),
               a.ev->>'session_id', a.ev->>'email_normalized', a.ev->>'phone_normalized',
               (a.ev->>'occurred_at')::TIMESTAMPTZ, a.first_type, a.first_at, a.probability
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

-- 025's, with the model's aggregates in its scans and the probability in the lead's INSERT or UPDATE (4b),
-- instead of step 7's second pass.
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
    v_model        INTEGER;
    v_weights      DOUBLE PRECISION[];
    v_means        DOUBLE PRECISION[];
    v_scales       DOUBLE PRECISION[];
    v_intercept    DOUBLE PRECISION;
    v_counts       BIGINT[];
    v_modifiers    INTEGER;
    v_seen_first   TIMESTAMPTZ;
    v_seen_last    TIMESTAMPTZ;
    v_sessions     BIGINT;
    v_source       TEXT;
    v_created_at   TIMESTAMPTZ;
    v_probability  DOUBLE PRECISION;
    v_linked_row   BIGINT;
    v_linked_source TEXT;
    v_linked_created_at TIMESTAMPTZ;
    v_session_prompted BOOLEAN;
    v_session_variant_b BOOLEAN;
    v_prompted     BOOLEAN;
    v_variant_b    BOOLEAN;
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
    t_probs        DOUBLE PRECISION[] := '{}';
    t_positions    INTEGER[] := '{}';
    f_leads        BIGINT[] := '{}';
    f_positions    INTEGER[] := '{}';
    v_position     INTEGER := 0;
    v_reprobed     INTEGER;
    v_shortcut     BOOLEAN;
    v_prompt_bits  INTEGER;
    c_leads        BIGINT[] := '{}';
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
    SELECT id, weights, means, scales, intercept INTO v_model, v_weights, v_means, v_scales, v_intercept
    FROM prediction_models WHERE active;

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
        v_position := v_position + 1;
        v_session := ev->>'session_id';
        v_email := ev->>'email_normalized';
        v_phone := ev->>'phone_normalized';
        v_lead_id := NULL;
        v_other_id := NULL;

        -- 1. The person, by contact, and the session's open lead, in one statement.
        SELECT (SELECT id FROM leads WHERE email_normalized = v_email AND lead_is_open(status)),
               (SELECT id FROM leads WHERE phone_normalized = v_phone AND lead_is_open(status)),
               s.lead_id, s.email_normalized, s.phone_normalized, s.lead_score,
               s.patient_name IS NOT NULL, s.procedure_name IS NOT NULL, s.lead_id, s.source, s.created_at,
               pv.prompted, pv.variant_b
        INTO v_lead_id, v_other_id, v_linked_id, v_linked_email, v_linked_phone, v_linked_score,
             v_linked_named, v_linked_procedure, v_linked_row, v_linked_source, v_linked_created_at,
             v_session_prompted, v_session_variant_b
        FROM (SELECT 1) AS one
        -- With a model: whether the event's session was prompted, and its variant (for the prediction, 4b).
        LEFT JOIN LATERAL (
            SELECT EXISTS (SELECT 1 FROM conversion_prompts cp WHERE cp.session_id = v_session) AS prompted,
                   (SELECT c.variant = 'B' FROM conversion_sessions c WHERE c.session_id = v_session LIMIT 1) AS variant_b
            WHERE v_model IS NOT NULL
        ) pv ON TRUE
        LEFT JOIN (
            SELECT sl.lead_id, l.email_normalized, l.phone_normalized, l.lead_score,
                   l.patient_name, l.procedure_name, l.source, l.created_at
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
            -- With each scan and a model, the model's aggregates of the same rows (lead_features_for's): the
            -- interactions the lead is made of once the batch has linked them. (Without a model they are left
            -- out: computed always, they made the batch function 13 % slower in an A/B against 025.)
            IF v_linked_id IS NULL THEN
                SELECT count(DISTINCT interaction_type), (array_agg(score_breakdown ORDER BY score DESC, id))[1],
                       (array_agg(interaction_type ORDER BY occurred_at, id))[1], min(occurred_at),
                       lead_type_counts(array_agg(interaction_type) FILTER (WHERE v_model IS NOT NULL)),
                       bit_or(COALESCE(modifiers, lead_modifiers(score_breakdown))) FILTER (WHERE v_model IS NOT NULL),
                       max(occurred_at) FILTER (WHERE v_model IS NOT NULL), 1
                INTO v_types, v_best, v_first_type, v_first_at, v_counts, v_modifiers, v_seen_last, v_sessions
                FROM user_interactions
                WHERE session_id = v_session AND lead_id IS NULL
                  AND (contact_key IS NULL OR id = v_interaction OR contact_key = ANY(lead_contact_keys(v_email, v_phone)));
                v_seen_first := v_first_at;
            ELSE
                -- The session is another lead's: this interaction alone, and no session.
                v_types := 1;
                v_best := ev->'breakdown';
                IF v_model IS NOT NULL THEN
                    SELECT lead_type_counts(ARRAY[interaction_type]), COALESCE(modifiers, lead_modifiers(score_breakdown)),
                           occurred_at, occurred_at, 1
                    INTO v_counts, v_modifiers, v_seen_first, v_seen_last, v_sessions
                    FROM user_interactions WHERE id = v_interaction;
                END IF;
            END IF;
            v_source := ev->>'source';
            v_created_at := now();
        ELSE
            v_linked_id := lead_link_interaction(v_lead_id, v_linked_id, v_session, v_interaction, v_event);
            IF v_model IS NULL THEN
                SELECT count(DISTINCT interaction_type), (array_agg(score_breakdown ORDER BY score DESC, id))[1]
                INTO v_types, v_best
                FROM user_interactions WHERE lead_id = v_lead_id;
            ELSE
                -- With a model, in the same statement: the session count, and unless the lead's interactions are
                -- all in the event's session, linked to it (then step 1 read it), whether any of the lead's sessions
                -- was prompted (bit 1) or is in variant B (bit 2), as lead_features_for looks them up. (As separate
                -- statements, these two cost more than the rest of the prediction in an A/B of the batch function.)
                SELECT count(DISTINCT interaction_type), (array_agg(score_breakdown ORDER BY score DESC, id))[1],
                       lead_type_counts(array_agg(interaction_type)),
                       bit_or(COALESCE(modifiers, lead_modifiers(score_breakdown))), min(occurred_at), max(occurred_at),
                       CASE WHEN min(session_id) = max(session_id) THEN 1
                            ELSE count(DISTINCT session_id) END,
                       CASE WHEN min(session_id) = max(session_id) AND v_linked_id = v_lead_id THEN NULL
                            ELSE (SELECT COALESCE(bool_or(pr.found), false)::INTEGER + 2 * COALESCE(bool_or(cs.variant = 'B'), false)::INTEGER
                                  FROM session_leads sl
                                  LEFT JOIN LATERAL (
                                      SELECT true AS found FROM conversion_prompts cp WHERE cp.session_id = sl.session_id LIMIT 1
                                  ) pr ON TRUE
                                  LEFT JOIN LATERAL (
                                      SELECT c.variant FROM conversion_sessions c WHERE c.session_id = sl.session_id LIMIT 1
                                  ) cs ON TRUE
                                  WHERE sl.lead_id = v_lead_id) END
                INTO v_types, v_best, v_counts, v_modifiers, v_seen_first, v_seen_last, v_sessions, v_prompt_bits
                FROM user_interactions WHERE lead_id = v_lead_id;
            END IF;
        END IF;

        -- 4. Score: the best interaction's lines, +5 per further distinct type, capped at 100.
        v_scored := lead_score_lines(v_best, v_types);
        v_lines := v_scored.lines;
        v_score := v_scored.score;

        -- 4b. With an active model, the probability as the lead will be written, in the same write.
        v_probability := NULL;
        IF v_model IS NOT NULL THEN
            -- The lead's sessions as lead_features_for sees them after this event: a new lead gets the event's
            -- session (none when it is another lead's); a known lead whose interactions are all in the event's
            -- session, linked to it, has that one session (a session is linked to a lead only with an
            -- interaction that joins it); any other known lead's were looked up with its scan (3).
            IF v_created AND v_linked_id IS NULL OR NOT v_created AND v_prompt_bits IS NULL THEN
                v_prompted := v_session_prompted;
                v_variant_b := v_session_variant_b;
            ELSIF v_created THEN
                v_prompted := false;
                v_variant_b := NULL;
            ELSE
                v_prompted := (v_prompt_bits & 1) <> 0;
                v_variant_b := (v_prompt_bits & 2) <> 0;
            END IF;
            IF v_created THEN
                NULL;
            ELSIF v_lead_id = v_linked_row THEN
                -- The session's lead, read in step 1.
                v_source := v_linked_source;
                v_created_at := v_linked_created_at;
            ELSE
                SELECT source, created_at INTO v_source, v_created_at FROM leads WHERE id = v_lead_id;
            END IF;
            v_probability := lead_probability(
                v_weights, v_means, v_scales, v_intercept, v_score, v_source, v_created_at, v_counts, v_types, v_modifiers, v_seen_first, v_seen_last,
                v_sessions, v_prompted, v_variant_b, now());
        END IF;

        -- 5. Write the lead once.
        IF v_created THEN
            INSERT INTO leads (patient_name, mobile_number, email, procedure_name, source, message, interaction_id,
                               lead_score, engagement_level, session_id, email_normalized, phone_normalized,
                               last_interaction_at, first_interaction_type, first_interaction_at, conversion_probability)
            VALUES (ev->>'name', CASE WHEN v_phone IS NOT NULL THEN ev->>'phone' END,
                    CASE WHEN v_email IS NOT NULL THEN ev->>'email' END, ev->>'procedure_name', ev->>'source',
                    ev->>'message', v_interaction, v_score, lead_engagement(v_score), v_session, v_email, v_phone,
                    (ev->>'occurred_at')::TIMESTAMPTZ, v_first_type, v_first_at, v_probability)
            RETURNING id, lead_json(leads) INTO v_lead_id, v_json;
            leads_created := leads_created + 1;
            c_leads := array_append(c_leads, v_lead_id);
            v_linked_id := lead_link_interaction(v_lead_id, v_linked_id, v_session, v_interaction, v_event);
            v_old_score := NULL;
            v_rescored := TRUE;
            v_changed := TRUE;
        END IF;
        v_shortcut := NOT v_created AND v_email IS NULL AND v_phone IS NULL AND v_lead_id = v_linked_id
                      AND v_score = v_linked_score AND (v_linked_named OR ev->>'name' IS NULL)
                      AND (v_linked_procedure OR ev->>'procedure_name' IS NULL);
        IF v_model IS NOT NULL AND NOT v_shortcut THEN
            -- The row is written in full here: a probability an earlier shortcut of the batch noted is out of date.
            f_leads := array_append(f_leads, v_lead_id);
            f_positions := array_append(f_positions, v_position);
        END IF;
        IF v_created THEN
            NULL;
        ELSIF v_shortcut THEN
            -- Nothing the lead shows changes but last_interaction_at and, with a model, the probability: both
            -- written after the loop, once a lead, with lead.updated for a new probability (6b).
            t_leads := array_append(t_leads, v_lead_id);
            t_times := array_append(t_times, (ev->>'occurred_at')::TIMESTAMPTZ);
            t_probs := array_append(t_probs, v_probability);
            t_positions := array_append(t_positions, v_position);
            v_rescored := FALSE;
            v_changed := FALSE;
        ELSE
            UPDATE leads l SET
                patient_name = n.patient_name, procedure_name = n.procedure_name,
                email = n.email, email_normalized = n.email_normalized,
                mobile_number = n.mobile_number, phone_normalized = n.phone_normalized,
                last_interaction_at = n.last_interaction_at,
                lead_score = v_score, engagement_level = lead_engagement(v_score),
                conversion_probability = COALESCE(v_probability, l.conversion_probability),
                updated_at = CASE WHEN n.filled OR n.old_score <> v_score THEN now() ELSE l.updated_at END
            FROM (
                -- A new probability is a change of the row like a filled contact (lead.updated, updated_at).
                SELECT f.*, f.patient_name IS DISTINCT FROM o.patient_name
                            OR f.procedure_name IS DISTINCT FROM o.procedure_name
                            OR f.email IS DISTINCT FROM o.email
                            OR f.mobile_number IS DISTINCT FROM o.mobile_number
                            OR o.conversion_probability IS DISTINCT FROM COALESCE(v_probability, o.conversion_probability) AS filled,
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

    -- 6b. The shortcut's leads, once each: a later last_interaction_at, and with a model the probability of the
    --     lead's last such event unless the row was written in full after it, announced with lead.updated.
    WITH x AS (
        SELECT t.lead_id, t.at, t.probability,
               t.probability IS NOT NULL AND t.probability IS DISTINCT FROM o.conversion_probability
                 AND NOT EXISTS (SELECT 1 FROM unnest(f_leads, f_positions) AS f(lead_id, position)
                                 WHERE f.lead_id = t.lead_id AND f.position > t.position) AS reprobed,
               o.last_interaction_at IS NULL OR o.last_interaction_at < t.at AS later
        FROM (
            SELECT lead_id, max(at) AS at, (array_agg(probability ORDER BY position DESC))[1] AS probability,
                   max(position) AS position
            FROM unnest(t_leads, t_times, t_probs, t_positions) AS t(lead_id, at, probability, position)
            GROUP BY lead_id
        ) t
        JOIN leads o ON o.id = t.lead_id
        ORDER BY t.lead_id
    ), written AS (
        UPDATE leads l SET
            last_interaction_at = CASE WHEN x.later THEN x.at ELSE l.last_interaction_at END,
            conversion_probability = CASE WHEN x.reprobed THEN x.probability ELSE l.conversion_probability END,
            updated_at = CASE WHEN x.reprobed THEN now() ELSE l.updated_at END
        FROM x
        WHERE l.id = x.lead_id AND (x.later OR x.reprobed)
        RETURNING l.id, CASE WHEN x.reprobed THEN lead_json(l) END AS body
    )
    SELECT o_keys || COALESCE(array_agg('lead.updated'::TEXT ORDER BY w.id) FILTER (WHERE w.body IS NOT NULL), '{}'),
           o_bodies || COALESCE(array_agg(w.body ORDER BY w.id) FILTER (WHERE w.body IS NOT NULL), '{}'),
           count(w.body)
    INTO o_keys, o_bodies, v_reprobed
    FROM written w;
    leads_updated := leads_updated + v_reprobed;
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
