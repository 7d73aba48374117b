-- The prediction step (014's lead_predict_batch) cost 106-118 µs a lead in the scorer. Measured per statement
-- in the scorer benchmark (pg_stat_statements, track = all): the features and probabilities about 50 µs a
-- lead, the second write of the row 23, patching the batch's messages with the new rows 15, lead_json() for
-- the leads that had no message 12, and reading the leads' scores first 5. Here, with the same values (the
-- features on every lead of a bench database, the probabilities bit for bit, and the messages for 300 leads
-- compared with 014's):
--   - the features per lead, one aggregation over its few interactions: the hash aggregations per lead and
--     session then per lead cost ~20 µs a lead, most of it for the session count, which is now exact without
--     sorting when min(session_id) = max(session_id), as for most leads;
--   - the scores read with the features (a NULL score in lead_features_for is the lead's own);
--   - the new rows' bodies made from the batch's last body about each lead plus the two columns the step
--     writes, instead of lead_json() for every lead written.
-- PredictionPipelineTests compares the features with the plain definition, the probability with the model
-- applied to them, and lead.scored with the row.

-- Leads' features as of a time each (with the score given, or the lead's own for NULL), per lead: one
-- aggregation over the lead's interactions (an index range of a few rows), and the session count exact
-- without sorting when they are all in one session (min = max), which is most leads; otherwise a count over
-- the lead's distinct sessions.
CREATE OR REPLACE FUNCTION lead_features_for(p_leads BIGINT[], p_scores INTEGER[], p_as_of TIMESTAMPTZ[])
RETURNS TABLE (lead_id BIGINT, features DOUBLE PRECISION[]) LANGUAGE sql STABLE AS $$
    SELECT w.lead_id, lead_feature_vector(
        COALESCE(w.score, l.lead_score), ui.counts, ui.types, l.source, (ui.modifiers & 1) <> 0, (ui.modifiers & 2) <> 0, (ui.modifiers & 4) <> 0,
        l.created_at, ui.first_at, ui.last_at, ui.sessions, p.prompted, p.variant_b, w.as_of)
    FROM unnest(p_leads, p_scores, p_as_of) AS w(lead_id, score, as_of)
    JOIN leads l ON l.id = w.lead_id
    CROSS JOIN LATERAL (
        SELECT ARRAY[
                   count(*) FILTER (WHERE u.interaction_type = 'ai_recommendation'),
                   count(*) FILTER (WHERE u.interaction_type = 'face_analysis'),
                   count(*) FILTER (WHERE u.interaction_type = 'cost_calculator'),
                   count(*) FILTER (WHERE u.interaction_type = 'appointment_booking'),
                   count(*) FILTER (WHERE u.interaction_type = 'package_inquiry'),
                   count(*) FILTER (WHERE u.interaction_type = 'consultation'),
                   count(*) FILTER (WHERE u.interaction_type = 'search'),
                   count(*) FILTER (WHERE u.interaction_type = 'page_view'),
                   count(*) FILTER (WHERE u.interaction_type = 'registration'),
                   count(*) FILTER (WHERE u.interaction_type = 'community_engagement'),
                   count(*) FILTER (WHERE u.interaction_type = 'prompt_dismissed')]::BIGINT[] AS counts,
               -- PostgreSQL computes each distinct aggregate once: these reuse the counts above.
               (count(*) FILTER (WHERE u.interaction_type = 'ai_recommendation') > 0)::int
                 + (count(*) FILTER (WHERE u.interaction_type = 'face_analysis') > 0)::int
                 + (count(*) FILTER (WHERE u.interaction_type = 'cost_calculator') > 0)::int
                 + (count(*) FILTER (WHERE u.interaction_type = 'appointment_booking') > 0)::int
                 + (count(*) FILTER (WHERE u.interaction_type = 'package_inquiry') > 0)::int
                 + (count(*) FILTER (WHERE u.interaction_type = 'consultation') > 0)::int
                 + (count(*) FILTER (WHERE u.interaction_type = 'search') > 0)::int
                 + (count(*) FILTER (WHERE u.interaction_type = 'page_view') > 0)::int
                 + (count(*) FILTER (WHERE u.interaction_type = 'registration') > 0)::int
                 + (count(*) FILTER (WHERE u.interaction_type = 'community_engagement') > 0)::int
                 + (count(*) FILTER (WHERE u.interaction_type = 'prompt_dismissed') > 0)::int AS types,
               bit_or(COALESCE(u.modifiers, lead_modifiers(u.score_breakdown))) AS modifiers,
               min(u.occurred_at) AS first_at,
               max(u.occurred_at) AS last_at,
               CASE WHEN min(u.session_id) = max(u.session_id) THEN 1
                    ELSE (SELECT count(*) FROM (SELECT DISTINCT x.session_id FROM user_interactions x
                                                WHERE x.lead_id = w.lead_id) AS d) END AS sessions
        FROM user_interactions u WHERE u.lead_id = w.lead_id
    ) AS ui
    CROSS JOIN LATERAL (
        SELECT count(cp.id) > 0 AS prompted, bool_or(cs.variant = 'B') AS variant_b
        FROM session_leads sl
        LEFT JOIN conversion_prompts cp ON cp.session_id = sl.session_id
        LEFT JOIN conversion_sessions cs ON cs.session_id = sl.session_id
        WHERE sl.lead_id = w.lead_id
    ) AS p
$$;

-- 014's step 7, writing the row without building its JSON: a lead.created or lead.updated body about a lead
-- whose probability changed becomes the batch's last such body about it with the new conversion_probability
-- and updated_at, which is the row as the batch leaves it (every other write of the batch to that row made a
-- body, and last_interaction_at is not in it). Only a lead without such a body gets lead_json(), for the
-- lead.updated that announces its probability.
CREATE OR REPLACE FUNCTION lead_predict_batch(p_leads BIGINT[], p_keys TEXT[], p_bodies JSONB[])
RETURNS TABLE (keys TEXT[], bodies JSONB[]) LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_leads  BIGINT[];
    v_probs  DOUBLE PRECISION[];
    v_times  TIMESTAMPTZ[];
BEGIN
    keys := p_keys;
    bodies := p_bodies;
    -- Each lead once, with the score the batch left it (a NULL score is the lead's own).
    v_leads := ARRAY(SELECT DISTINCT unnest(p_leads));
    SELECT COALESCE(array_agg(f.lead_id), '{}'),
           array_agg(lead_model_probability(m.weights, m.means, m.scales, m.intercept, f.features))
    INTO v_leads, v_probs
    FROM prediction_models m,
         lead_features_for(v_leads, NULL, array_fill(now(), ARRAY[cardinality(v_leads)])) f
    WHERE m.active;
    WITH changed AS (
        UPDATE leads l SET conversion_probability = p.probability, updated_at = now()
        FROM unnest(v_leads, v_probs) AS p(lead_id, probability)
        WHERE l.id = p.lead_id AND l.conversion_probability IS DISTINCT FROM p.probability
        RETURNING l.id, l.conversion_probability, l.updated_at
    )
    SELECT COALESCE(array_agg(id ORDER BY id), '{}'), array_agg(conversion_probability ORDER BY id),
           array_agg(updated_at ORDER BY id)
    INTO v_leads, v_probs, v_times FROM changed;
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
    SELECT keys || COALESCE(array_agg('lead.updated'::TEXT ORDER BY l.id), '{}'),
           bodies || COALESCE(array_agg(lead_json(l) ORDER BY l.id), '{}')
    INTO keys, bodies
    FROM leads l
    WHERE l.id = ANY(v_leads) AND NOT EXISTS (
        SELECT 1 FROM unnest(p_keys, p_bodies) AS o(key, body)
        WHERE o.key IN ('lead.created', 'lead.updated') AND (o.body->>'id')::BIGINT = l.id);
    RETURN NEXT;
END
$$;
