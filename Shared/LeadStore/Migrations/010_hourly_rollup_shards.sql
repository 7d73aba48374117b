-- The hourly rollup row of (hour, type) was updated by every scorer's batch and stayed locked until that
-- batch committed, so two scorers inserting interactions of the same hour and type took turns: a second
-- scorer added nothing. Rows are now sharded by the writing backend; readers already sum them.
ALTER TABLE interaction_hourly ADD COLUMN shard SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE interaction_hourly DROP CONSTRAINT interaction_hourly_pkey;
ALTER TABLE interaction_hourly ADD PRIMARY KEY (hour, interaction_type, shard);

CREATE OR REPLACE FUNCTION interaction_hourly_rollup() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO interaction_hourly (hour, interaction_type, shard, interactions)
    SELECT date_trunc('hour', occurred_at), interaction_type, pg_backend_pid() % 64, count(*)
    FROM new_rows GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (hour, interaction_type, shard)
    DO UPDATE SET interactions = interaction_hourly.interactions + EXCLUDED.interactions;
    RETURN NULL;
END
$$;
