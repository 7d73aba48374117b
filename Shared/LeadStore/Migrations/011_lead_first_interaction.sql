-- The conversion flow (source → first interaction type → outcome) looked up each lead's earliest interaction
-- (a LATERAL probe per lead: ~0.7 s for 100,000 leads). The lead now carries it.
-- Kept where it costs least: when the scorer creates a lead, the first interaction is the earliest of the
-- creating session's interactions not yet linked to a lead (the ones about to be stitched to it), found by
-- one index probe before the row is written. History inserted already linked (leadctl simulate) updates it
-- per row. An earlier interaction linked later from another session does not move it. (A trigger on every
-- link instead cost the scorer 19 % of its time.)
ALTER TABLE leads ADD COLUMN first_interaction_type TEXT, ADD COLUMN first_interaction_at TIMESTAMPTZ;

UPDATE leads l SET first_interaction_type = f.interaction_type, first_interaction_at = f.occurred_at
FROM (
    SELECT DISTINCT ON (lead_id) lead_id, interaction_type, occurred_at
    FROM user_interactions WHERE lead_id IS NOT NULL ORDER BY lead_id, occurred_at, id
) f
WHERE f.lead_id = l.id;

CREATE FUNCTION lead_first_interaction_on_create() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.first_interaction_type IS NULL AND NEW.session_id IS NOT NULL THEN
        -- An aggregate, not ORDER BY ... LIMIT 1: that form may be planned as a walk of the occurred_at index.
        SELECT (array_agg(interaction_type ORDER BY occurred_at, id))[1], min(occurred_at)
        INTO NEW.first_interaction_type, NEW.first_interaction_at
        FROM user_interactions
        WHERE session_id = NEW.session_id AND (lead_id IS NULL OR id = NEW.interaction_id);
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER leads_first_interaction BEFORE INSERT ON leads
    FOR EACH ROW EXECUTE FUNCTION lead_first_interaction_on_create();

CREATE FUNCTION lead_first_interaction() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    UPDATE leads SET first_interaction_type = NEW.interaction_type, first_interaction_at = NEW.occurred_at
    WHERE id = NEW.lead_id AND (first_interaction_at IS NULL OR first_interaction_at > NEW.occurred_at);
    RETURN NULL;
END
$$;

CREATE TRIGGER user_interactions_first_on_insert AFTER INSERT ON user_interactions
    FOR EACH ROW WHEN (NEW.lead_id IS NOT NULL)
    EXECUTE FUNCTION lead_first_interaction();
