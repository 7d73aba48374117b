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
--    lead_process_events calls the new lead_predict_batch from migration 027 on, which redefines it once for
--    this and its own change; until then 025's keeps calling the old one, which 027 drops.
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
