-- lead-alerts: alerts stored once each, and webhook deliveries with every attempt recorded.

CREATE TABLE alerts (
    id         UUID PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('high_score', 'conversion_opportunity')),
    -- one alert per lead crossing / per prompted session decision, whatever the redeliveries
    dedupe_key TEXT NOT NULL UNIQUE,
    lead_id    BIGINT,
    session_id TEXT,
    payload    JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX alerts_created ON alerts (created_at);
CREATE INDEX alerts_lead ON alerts (lead_id) WHERE lead_id IS NOT NULL;

CREATE TABLE webhook_endpoints (
    url             TEXT PRIMARY KEY,
    disabled_at     TIMESTAMPTZ,
    disabled_reason TEXT
);

CREATE TABLE webhook_deliveries (
    id              BIGSERIAL PRIMARY KEY,
    alert_id        UUID NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    url             TEXT NOT NULL,
    payload         JSONB NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed', 'disabled')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_status     INTEGER,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- retries give up this long after this time (reset by `leadctl webhooks resend`)
    retry_since     TIMESTAMPTZ NOT NULL DEFAULT now(),
    delivered_at    TIMESTAMPTZ,
    UNIQUE (alert_id, url)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (url, next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_status ON webhook_deliveries (status, created_at);

CREATE TABLE webhook_attempts (
    id           BIGSERIAL PRIMARY KEY,
    delivery_id  BIGINT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempted_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    status_code  INTEGER,
    latency_ms   DOUBLE PRECISION NOT NULL,
    error        TEXT
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id);
