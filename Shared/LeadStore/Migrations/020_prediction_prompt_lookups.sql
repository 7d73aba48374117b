-- The prompt and variant features per key. 017's lead_features_for joined a lead's sessions to
-- conversion_prompts in a plain LEFT JOIN; for a small prompts table the planner made that a hash join over a
-- sequential scan of every prompt, once per lead (auto_explain on the benchmark's end-to-end database: 144 µs
-- of a lead's 160 µs with 500 prompts), and plans made that way are kept for the connection's life (the
-- scorer's batch function plans generically), so the cost would grow with the table. Each session's prompt and
-- variant are now LATERAL lookups with LIMIT (one index probe each, as in 016): 10 µs a lead on the same
-- database. Same values: a lead is prompted when any of its sessions has a prompt (false without sessions),
-- and variant B when any of its sessions is in B.

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
        SELECT COALESCE(bool_or(pr.found), false) AS prompted, bool_or(cs.variant = 'B') AS variant_b
        FROM session_leads sl
        LEFT JOIN LATERAL (
            SELECT true AS found FROM conversion_prompts cp WHERE cp.session_id = sl.session_id LIMIT 1
        ) pr ON TRUE
        LEFT JOIN LATERAL (
            SELECT c.variant FROM conversion_sessions c WHERE c.session_id = sl.session_id LIMIT 1
        ) cs ON TRUE
        WHERE sl.lead_id = w.lead_id
    ) AS p
$$;

-- 017's lead_predict_batch, with the lead.updated bodies of changed leads that had no body in the batch made
-- in the UPDATE's RETURNING (the row it just wrote) instead of a second pass over those leads that looked for
-- each one's body among all the batch's messages (10 µs a lead in the scorer benchmark, pg_stat_statements).
CREATE OR REPLACE FUNCTION lead_predict_batch(p_leads BIGINT[], p_keys TEXT[], p_bodies JSONB[])
RETURNS TABLE (keys TEXT[], bodies JSONB[]) LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_leads  BIGINT[];
    v_probs  DOUBLE PRECISION[];
    v_times  TIMESTAMPTZ[];
    v_rows   BIGINT[];
    v_extra  JSONB[];
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
    -- The leads the batch already announces with their row (lead.created or lead.updated).
    v_rows := ARRAY(SELECT DISTINCT (o.body->>'id')::BIGINT FROM unnest(p_keys, p_bodies) AS o(key, body)
                    WHERE o.key IN ('lead.created', 'lead.updated'));
    WITH changed AS (
        UPDATE leads l SET conversion_probability = p.probability, updated_at = now()
        FROM unnest(v_leads, v_probs) AS p(lead_id, probability)
        WHERE l.id = p.lead_id AND l.conversion_probability IS DISTINCT FROM p.probability
        RETURNING l.id, l.conversion_probability, l.updated_at,
                  CASE WHEN l.id <> ALL(v_rows) THEN lead_json(l) END AS body
    )
    SELECT COALESCE(array_agg(id ORDER BY id), '{}'), array_agg(conversion_probability ORDER BY id),
           array_agg(updated_at ORDER BY id),
           COALESCE(array_agg(body ORDER BY id) FILTER (WHERE body IS NOT NULL), '{}')
    INTO v_leads, v_probs, v_times, v_extra FROM changed;
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

-- Room on each page of leads for the new version of a row, so that an UPDATE which changes no indexed column
-- (the prediction step's probability and updated_at, a contact filled in) can be a heap-only tuple update,
-- without new entries in leads' seven indexes. Pages written from now on keep a fifth free; existing pages
-- keep their fill until rewritten.
ALTER TABLE leads SET (fillfactor = 80);
