-- lead-admin: outcomes reported by CRMs, erasures, and what the analytics need to stay fast on millions of rows.

ALTER TABLE leads ADD COLUMN status_changed_at TIMESTAMPTZ;

CREATE TABLE lead_outcomes (
    id           BIGSERIAL PRIMARY KEY,
    lead_id      BIGINT NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    status       TEXT NOT NULL CHECK (status IN ('contacted', 'booked', 'converted', 'lost')),
    occurred_at  TIMESTAMPTZ NOT NULL,
    reported_via TEXT NOT NULL CHECK (reported_via IN ('api', 'message')),
    -- a CRM message delivered twice is recorded once
    message_id   TEXT UNIQUE,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX lead_outcomes_lead ON lead_outcomes (lead_id, occurred_at);

-- Erasures are recorded without the personal data they removed.
CREATE TABLE erasures (
    id                UUID PRIMARY KEY,
    requested_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    lead_count        INTEGER NOT NULL,
    interaction_count INTEGER NOT NULL
);

-- Hourly interaction counts per type, kept by a statement trigger: the heatmap and funnel read these instead
-- of scanning every interaction. Rows are upserted in key order so concurrent scorers never deadlock.
CREATE TABLE interaction_hourly (
    hour             TIMESTAMPTZ NOT NULL,
    interaction_type TEXT NOT NULL,
    interactions     BIGINT NOT NULL,
    PRIMARY KEY (hour, interaction_type)
);

CREATE FUNCTION interaction_hourly_rollup() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO interaction_hourly (hour, interaction_type, interactions)
    SELECT date_trunc('hour', occurred_at), interaction_type, count(*)
    FROM new_rows GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (hour, interaction_type)
    DO UPDATE SET interactions = interaction_hourly.interactions + EXCLUDED.interactions;
    RETURN NULL;
END
$$;

CREATE TRIGGER user_interactions_hourly AFTER INSERT ON user_interactions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION interaction_hourly_rollup();

INSERT INTO interaction_hourly (hour, interaction_type, interactions)
SELECT date_trunc('hour', occurred_at), interaction_type, count(*) FROM user_interactions GROUP BY 1, 2;

CREATE INDEX user_interactions_lead_time ON user_interactions (lead_id, occurred_at) WHERE lead_id IS NOT NULL;
CREATE INDEX conversion_sessions_created ON conversion_sessions (created_at);
CREATE INDEX leads_created_id ON leads (created_at DESC, id DESC);
