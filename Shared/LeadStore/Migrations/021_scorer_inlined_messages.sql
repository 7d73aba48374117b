-- lead_scored_message (015) was declared IMMUTABLE around jsonb_build_object, which is STABLE; PostgreSQL does
-- not inline a function whose body is more volatile than its declaration, so every call ran the body as a
-- query of its own (44,715 calls at 15-16 µs each in a scorer benchmark run, pg_stat_statements), and the
-- set-based creation (016's lead_create_alone) paid it for every lead. Declared STABLE (what it is), it is
-- inlined into the statements that call it; same result. Scorer benchmark, one run each, both with 020:
-- lead_create_alone 10.8-11.9 s -> 8.8-9.3 s over the run's 160,000 events; one scorer 0.123-0.124 -> 0.145-0.149
-- of the database ceiling.
ALTER FUNCTION lead_scored_message(BIGINT, BIGINT, UUID, INTEGER, INTEGER, JSONB, JSONB) STABLE;
