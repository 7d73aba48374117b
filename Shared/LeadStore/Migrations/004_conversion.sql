-- lead-conversion: per-session state, prompt decisions, and the events already applied (idempotency).

CREATE TABLE conversion_sessions (
    session_id         TEXT PRIMARY KEY,
    variant            TEXT NOT NULL CHECK (variant IN ('A', 'B')),
    intent_score       INTEGER NOT NULL DEFAULT 0,
    interaction_count  INTEGER NOT NULL DEFAULT 0,
    contact_known      BOOLEAN NOT NULL DEFAULT false,
    prompts            INTEGER NOT NULL DEFAULT 0,
    last_prompt_at     TIMESTAMPTZ,
    -- the latest decision, as GET /v1/sessions/{id}/prompt returns it
    decision_prompt    BOOLEAN NOT NULL DEFAULT false,
    decision_reason    TEXT,
    decision_prompt_id UUID,
    decided_at         TIMESTAMPTZ,
    missing_fields     TEXT[] NOT NULL DEFAULT '{name,phone,email}',
    -- the full state lead-conversion folds interactions into (SessionState)
    state              JSONB NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX conversion_sessions_variant ON conversion_sessions (variant);

CREATE TABLE conversion_prompts (
    id                 UUID PRIMARY KEY,
    session_id         TEXT NOT NULL,
    -- the interaction that triggered it: one decision, one prompt, whatever the redeliveries
    event_id           UUID NOT NULL UNIQUE,
    variant            TEXT NOT NULL,
    intent_score       INTEGER NOT NULL,
    reason             TEXT NOT NULL,
    fields             TEXT[] NOT NULL,
    status             TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'converted', 'expired')),
    created_at         TIMESTAMPTZ NOT NULL,
    converted_at       TIMESTAMPTZ,
    conversion_seconds DOUBLE PRECISION
);
CREATE INDEX conversion_prompts_session ON conversion_prompts (session_id, created_at);
CREATE INDEX conversion_prompts_open ON conversion_prompts (created_at) WHERE status = 'open';
CREATE INDEX conversion_prompts_variant ON conversion_prompts (variant, status);

CREATE TABLE conversion_processed (
    event_id     UUID PRIMARY KEY,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
