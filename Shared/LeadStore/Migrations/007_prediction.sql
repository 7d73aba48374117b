-- Predictive lead quality: the features of a lead's history, versioned models trained by `leadctl train`,
-- and the scorer's prediction. The fixed points stay the explainable score; the active model (at most one)
-- adds leads.conversion_probability. No active model: the probability stays NULL.

CREATE TABLE prediction_models (
    id              SERIAL PRIMARY KEY,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    kind            TEXT NOT NULL DEFAULT 'logistic_regression',
    features        TEXT[] NOT NULL,
    -- standardization: x' = (x - mean) / scale
    means           DOUBLE PRECISION[] NOT NULL,
    scales          DOUBLE PRECISION[] NOT NULL,
    weights         DOUBLE PRECISION[] NOT NULL,
    intercept       DOUBLE PRECISION NOT NULL,
    metrics         JSONB NOT NULL,
    training_window JSONB NOT NULL,
    active          BOOLEAN NOT NULL DEFAULT false,
    activated_at    TIMESTAMPTZ,
    CHECK (cardinality(features) = cardinality(means) AND cardinality(means) = cardinality(scales)
           AND cardinality(scales) = cardinality(weights))
);
CREATE UNIQUE INDEX prediction_models_one_active ON prediction_models (active) WHERE active;

-- The feature names, in the order lead_features returns them. LeadCore's LeadFeatures mirrors this list.
CREATE FUNCTION lead_feature_names() RETURNS TEXT[] LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY[
        'rule_score',
        'log_ai_recommendation', 'log_face_analysis', 'log_cost_calculator', 'log_appointment_booking',
        'log_package_inquiry', 'log_consultation', 'log_search', 'log_page_view', 'log_registration',
        'log_community_engagement', 'log_prompt_dismissed',
        'distinct_types',
        'source_ai_recommendation', 'source_face_analysis', 'source_cost_calculator',
        'source_appointment_booking', 'source_package_inquiry', 'source_consultation',
        'budget_high', 'urgency_immediate', 'multiple_procedures',
        'log_hours_first_to_contact', 'log_sessions', 'prompted', 'variant_b', 'log_days_since_last'
    ]::TEXT[]
$$;

-- Leads' features as of a time each (now, when scoring; a day after creation, when training), set-based so
-- training reads 100,000 leads in one pass; the scorer calls it for one lead (index scans on lead_id).
CREATE FUNCTION lead_features_for(p_leads BIGINT[], p_scores INTEGER[], p_as_of TIMESTAMPTZ[])
RETURNS TABLE (lead_id BIGINT, features DOUBLE PRECISION[]) LANGUAGE sql STABLE AS $$
    WITH wanted AS (
        SELECT * FROM unnest(p_leads, p_scores, p_as_of) AS w(lead_id, score, as_of)
    ), ui AS (
        SELECT u.lead_id,
            count(*) FILTER (WHERE interaction_type = 'ai_recommendation') AS ai,
            count(*) FILTER (WHERE interaction_type = 'face_analysis') AS face,
            count(*) FILTER (WHERE interaction_type = 'cost_calculator') AS cost,
            count(*) FILTER (WHERE interaction_type = 'appointment_booking') AS booking,
            count(*) FILTER (WHERE interaction_type = 'package_inquiry') AS package,
            count(*) FILTER (WHERE interaction_type = 'consultation') AS consult,
            count(*) FILTER (WHERE interaction_type = 'search') AS search,
            count(*) FILTER (WHERE interaction_type = 'page_view') AS page,
            count(*) FILTER (WHERE interaction_type = 'registration') AS registration,
            count(*) FILTER (WHERE interaction_type = 'community_engagement') AS community,
            count(*) FILTER (WHERE interaction_type = 'prompt_dismissed') AS dismissed,
            count(DISTINCT interaction_type) AS types,
            bool_or(score_breakdown @> '[{"rule": "budget_range:high"}]') AS budget,
            bool_or(score_breakdown @> '[{"rule": "urgency:immediate"}]') AS urgency,
            bool_or(score_breakdown @> '[{"rule": "multiple_procedures"}]') AS multiple,
            min(occurred_at) AS first_at,
            max(occurred_at) AS last_at,
            count(DISTINCT session_id) AS sessions
        FROM user_interactions u WHERE u.lead_id = ANY(p_leads)
        GROUP BY u.lead_id
    ), p AS (
        SELECT sl.lead_id, count(cp.id) > 0 AS prompted, bool_or(cs.variant = 'B') AS variant_b
        FROM session_leads sl
        LEFT JOIN conversion_prompts cp ON cp.session_id = sl.session_id
        LEFT JOIN conversion_sessions cs ON cs.session_id = sl.session_id
        WHERE sl.lead_id = ANY(p_leads)
        GROUP BY sl.lead_id
    )
    SELECT w.lead_id, ARRAY[
        w.score / 100.0,
        ln(1 + COALESCE(ui.ai, 0)), ln(1 + COALESCE(ui.face, 0)), ln(1 + COALESCE(ui.cost, 0)),
        ln(1 + COALESCE(ui.booking, 0)), ln(1 + COALESCE(ui.package, 0)), ln(1 + COALESCE(ui.consult, 0)),
        ln(1 + COALESCE(ui.search, 0)), ln(1 + COALESCE(ui.page, 0)), ln(1 + COALESCE(ui.registration, 0)),
        ln(1 + COALESCE(ui.community, 0)), ln(1 + COALESCE(ui.dismissed, 0)),
        COALESCE(ui.types, 0),
        (l.source IS NOT DISTINCT FROM 'AI Recommendation')::int, (l.source IS NOT DISTINCT FROM 'Face Analysis')::int,
        (l.source IS NOT DISTINCT FROM 'Cost Calculator')::int, (l.source IS NOT DISTINCT FROM 'Appointment Booking')::int,
        (l.source IS NOT DISTINCT FROM 'Package Inquiry')::int, (l.source IS NOT DISTINCT FROM 'Consultation')::int,
        COALESCE(ui.budget, false)::int, COALESCE(ui.urgency, false)::int, COALESCE(ui.multiple, false)::int,
        ln(1 + GREATEST(0, COALESCE(EXTRACT(EPOCH FROM (l.created_at - ui.first_at)) / 3600, 0))),
        ln(1 + COALESCE(ui.sessions, 0)),
        COALESCE(p.prompted, false)::int, COALESCE(p.variant_b, false)::int,
        ln(1 + GREATEST(0, COALESCE(EXTRACT(EPOCH FROM (w.as_of - ui.last_at)) / 86400, 0)))
    ]::DOUBLE PRECISION[]
    FROM wanted w
    JOIN leads l ON l.id = w.lead_id
    LEFT JOIN ui ON ui.lead_id = w.lead_id
    LEFT JOIN p ON p.lead_id = w.lead_id
$$;

-- One lead's features (the scorer's call).
CREATE FUNCTION lead_features(p_lead BIGINT, p_score INTEGER, p_as_of TIMESTAMPTZ)
RETURNS DOUBLE PRECISION[] LANGUAGE sql STABLE AS $$
    SELECT features FROM lead_features_for(ARRAY[p_lead], ARRAY[p_score], ARRAY[p_as_of])
$$;

-- The active model's probability for these features; NULL without an active model. The linear term is
-- clamped so exp() cannot overflow.
CREATE FUNCTION lead_predict_features(p_features DOUBLE PRECISION[]) RETURNS DOUBLE PRECISION
LANGUAGE sql STABLE AS $$
    SELECT 1 / (1 + exp(-LEAST(30, GREATEST(-30, m.intercept + COALESCE((
        SELECT sum(m.weights[i] * (COALESCE(p_features[i], 0) - m.means[i]) / m.scales[i])
        FROM generate_subscripts(m.weights, 1) AS i), 0)))))
    FROM prediction_models m WHERE m.active
$$;

-- Recomputes a lead's score (as in 002) and, when a model is active, its conversion probability; on a score
-- change, ledger rows and `lead.scored` (which carries the probability). Returns whether the score changed.
CREATE OR REPLACE FUNCTION lead_rescore(p_lead BIGINT, p_interaction BIGINT, p_event UUID, p_created BOOLEAN)
RETURNS BOOLEAN LANGUAGE plpgsql AS $$
DECLARE
    v_types   INTEGER;
    v_lines   JSONB;
    v_sum     INTEGER;
    v_score   INTEGER;
    v_old     INTEGER;
    v_prob    DOUBLE PRECISION;
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
    IF EXISTS (SELECT 1 FROM prediction_models WHERE active) THEN
        v_prob := lead_predict_features(lead_features(p_lead, v_score, now()));
    END IF;

    SELECT lead_score INTO v_old FROM leads WHERE id = p_lead;
    IF NOT p_created AND v_old = v_score THEN
        UPDATE leads SET conversion_probability = v_prob
        WHERE id = p_lead AND conversion_probability IS DISTINCT FROM v_prob;
        RETURN FALSE;
    END IF;
    UPDATE leads SET lead_score = v_score, engagement_level = lead_engagement(v_score), conversion_probability = v_prob,
        updated_at = now()
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
