-- Core tables of the original plan (CONTRACT section 5) and the scorer's own.

CREATE TABLE lead_scoring_rules (
    id               SERIAL PRIMARY KEY,
    interaction_type TEXT NOT NULL UNIQUE,
    points           INTEGER NOT NULL CHECK (points BETWEEN 0 AND 100),
    description      TEXT,
    is_active        BOOLEAN NOT NULL DEFAULT true,
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

INSERT INTO lead_scoring_rules (interaction_type, points, description) VALUES
    ('appointment_booking', 90, 'Booked an appointment'),
    ('consultation', 85, 'Asked for a consultation'),
    ('face_analysis', 80, 'Completed a face analysis'),
    ('package_inquiry', 75, 'Asked about a package'),
    ('cost_calculator', 70, 'Used the cost calculator'),
    ('ai_recommendation', 60, 'Completed the AI recommendation form'),
    ('registration', 20, 'Registered an account'),
    ('community_engagement', 10, 'Engaged with the community'),
    ('search', 5, 'Searched'),
    ('page_view', 1, 'Viewed a page'),
    ('prompt_dismissed', 0, 'Dismissed a contact prompt');

CREATE TABLE leads (
    id                     BIGSERIAL PRIMARY KEY,
    patient_name           TEXT,
    mobile_number          TEXT,
    email                  TEXT,
    procedure_name         TEXT,
    source                 TEXT,
    message                TEXT,
    interaction_id         BIGINT,
    lead_score             INTEGER NOT NULL DEFAULT 50 CHECK (lead_score BETWEEN 0 AND 100),
    engagement_level       TEXT NOT NULL DEFAULT 'low' CHECK (engagement_level IN ('low', 'medium', 'high')),
    session_id             TEXT,
    status                 TEXT NOT NULL DEFAULT 'new'
                           CHECK (status IN ('new', 'contacted', 'booked', 'converted', 'lost')),
    conversion_probability DOUBLE PRECISION CHECK (conversion_probability BETWEEN 0 AND 1),
    created_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- project columns: identity keys and recency
    email_normalized       TEXT,
    phone_normalized       TEXT,
    last_interaction_at    TIMESTAMPTZ
);

-- One person, one open lead: the database enforces it.
CREATE UNIQUE INDEX leads_open_email ON leads (email_normalized)
    WHERE email_normalized IS NOT NULL AND status IN ('new', 'contacted', 'booked');
CREATE UNIQUE INDEX leads_open_phone ON leads (phone_normalized)
    WHERE phone_normalized IS NOT NULL AND status IN ('new', 'contacted', 'booked');
CREATE INDEX leads_created_at ON leads (created_at);
CREATE INDEX leads_score ON leads (lead_score);
CREATE INDEX leads_status ON leads (status);
CREATE INDEX leads_source ON leads (source);

CREATE TABLE user_interactions (
    id                BIGSERIAL PRIMARY KEY,
    event_id          UUID NOT NULL UNIQUE,
    session_id        TEXT NOT NULL,
    user_id           BIGINT,
    interaction_type  TEXT NOT NULL,
    source_page       TEXT,
    data              JSONB NOT NULL DEFAULT '{}',
    converted_to_lead BOOLEAN NOT NULL DEFAULT false,
    lead_id           BIGINT REFERENCES leads (id) ON DELETE SET NULL,
    score             INTEGER,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- project columns
    score_breakdown   JSONB,
    occurred_at       TIMESTAMPTZ NOT NULL,
    received_at       TIMESTAMPTZ
);

CREATE INDEX user_interactions_session ON user_interactions (session_id);
CREATE INDEX user_interactions_lead ON user_interactions (lead_id) WHERE lead_id IS NOT NULL;
CREATE INDEX user_interactions_occurred ON user_interactions (occurred_at);
CREATE INDEX user_interactions_type ON user_interactions (interaction_type, occurred_at);

-- Which lead a browsing session belongs to (identity stitching).
CREATE TABLE session_leads (
    session_id TEXT PRIMARY KEY,
    lead_id    BIGINT NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    linked_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX session_leads_lead ON session_leads (lead_id);

-- Every score a lead has had, explained: the rows of one (lead_id, event_id) add up to lead_score.
CREATE TABLE lead_score_ledger (
    id             BIGSERIAL PRIMARY KEY,
    lead_id        BIGINT NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    event_id       UUID NOT NULL,
    interaction_id BIGINT,
    rule           TEXT NOT NULL,
    points         INTEGER NOT NULL,
    lead_score     INTEGER NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX lead_score_ledger_lead ON lead_score_ledger (lead_id, id);

-- Messages written in the same transaction as the change they announce; a relay publishes them.
CREATE TABLE outbox (
    id          BIGSERIAL PRIMARY KEY,
    message_id  UUID NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    exchange    TEXT NOT NULL,
    routing_key TEXT NOT NULL,
    body        JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Cases where two identified people share a signal (a session): logged, never merged.
CREATE TABLE identity_conflicts (
    id            BIGSERIAL PRIMARY KEY,
    event_id      UUID NOT NULL,
    session_id    TEXT,
    lead_id       BIGINT,
    other_lead_id BIGINT,
    reason        TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
