-- The scorer publishes its own messages, as lead-alerts and lead-conversion do since 019: its outbox rows are
-- written leased to it and returned to it, and it hands them to its OutboxDispatcher right after the commit,
-- instead of waking the relay to open a transaction, claim the rows again (FOR UPDATE), publish, delete and
-- commit. Nothing changes for a crash, a broker that does not confirm or a row that cannot be deleted: the
-- relay publishes the row under the same message_id once the lease has ended.

-- Rows inserted while the transaction-local setting lead.outbox_lease_seconds is set are leased for that long;
-- otherwise (unset, or reset to '') leased_until stays NULL, as before.
ALTER TABLE outbox ALTER COLUMN leased_until SET DEFAULT
    now() + make_interval(secs => NULLIF(current_setting('lead.outbox_lease_seconds', true), '')::DOUBLE PRECISION);

-- One scorer batch (lead_process_events) with its outbox rows leased for p_lease_seconds, and those rows. They
-- are the rows above the sequence's last value before the batch that this transaction wrote (ids are drawn in
-- increasing order, so every row written later has a larger id; rows other transactions wrote meanwhile are
-- told apart by xmin). lead_process_events runs no subtransactions, so its rows' xmin is this transaction's;
-- a transaction that has written nothing has no id yet, and gets no rows. (outbox_id_seq has CACHE 1; with a
-- larger cache a session's pre-drawn ids could lie below the floor, and such rows would reach the relay when
-- their lease ends rather than the scorer's dispatcher: late, never lost.)
CREATE FUNCTION lead_process_events_leased(p_events JSONB, p_lease_seconds DOUBLE PRECISION)
RETURNS TABLE (inserted INTEGER, duplicates INTEGER, leads_created INTEGER, leads_updated INTEGER,
               outbox_ids BIGINT[], message_ids UUID[], exchanges TEXT[], routing_keys TEXT[], bodies TEXT[])
LANGUAGE plpgsql AS $$
DECLARE
    v_floor BIGINT;
BEGIN
    v_floor := COALESCE(pg_sequence_last_value('outbox_id_seq'::regclass), 0);
    PERFORM set_config('lead.outbox_lease_seconds', p_lease_seconds::TEXT, true);
    SELECT p.inserted, p.duplicates, p.leads_created, p.leads_updated
    INTO inserted, duplicates, leads_created, leads_updated
    FROM lead_process_events(p_events) p;
    PERFORM set_config('lead.outbox_lease_seconds', '', true);
    SELECT COALESCE(array_agg(o.id ORDER BY o.id), '{}'), COALESCE(array_agg(o.message_id ORDER BY o.id), '{}'),
           COALESCE(array_agg(o.exchange ORDER BY o.id), '{}'), COALESCE(array_agg(o.routing_key ORDER BY o.id), '{}'),
           COALESCE(array_agg(o.body::TEXT ORDER BY o.id), '{}')
    INTO outbox_ids, message_ids, exchanges, routing_keys, bodies
    FROM outbox o
    WHERE o.id > v_floor AND o.xmin = pg_current_xact_id_if_assigned()::xid;
    RETURN NEXT;
END
$$;
