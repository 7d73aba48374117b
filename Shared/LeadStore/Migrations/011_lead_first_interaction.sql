-- The conversion flow (source → first interaction type → outcome) looked up each lead's earliest interaction
-- (a LATERAL probe per lead: ~0.7 s for 100,000 leads). The lead now carries it, kept by row triggers when an
-- interaction joins a lead (the scorer links them by UPDATE; simulated history is inserted linked). Only an
-- earlier interaction changes it, so a lead's later interactions cost an index probe and no write.
ALTER TABLE leads ADD COLUMN first_interaction_type TEXT, ADD COLUMN first_interaction_at TIMESTAMPTZ;

UPDATE leads l SET first_interaction_type = f.interaction_type, first_interaction_at = f.occurred_at
FROM (
    SELECT DISTINCT ON (lead_id) lead_id, interaction_type, occurred_at
    FROM user_interactions WHERE lead_id IS NOT NULL ORDER BY lead_id, occurred_at, id
) f
WHERE f.lead_id = l.id;

CREATE FUNCTION lead_first_interaction() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    UPDATE leads SET first_interaction_type = NEW.interaction_type, first_interaction_at = NEW.occurred_at
    WHERE id = NEW.lead_id AND (first_interaction_at IS NULL OR first_interaction_at > NEW.occurred_at);
    RETURN NULL;
END
$$;

CREATE TRIGGER user_interactions_first_on_link AFTER UPDATE OF lead_id ON user_interactions
    FOR EACH ROW WHEN (NEW.lead_id IS NOT NULL AND NEW.lead_id IS DISTINCT FROM OLD.lead_id)
    EXECUTE FUNCTION lead_first_interaction();
CREATE TRIGGER user_interactions_first_on_insert AFTER INSERT ON user_interactions
    FOR EACH ROW WHEN (NEW.lead_id IS NOT NULL)
    EXECUTE FUNCTION lead_first_interaction();
