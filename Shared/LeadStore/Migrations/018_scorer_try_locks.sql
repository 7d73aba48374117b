-- Two scorers serialized on their identity locks. lead_process_events takes an advisory lock per session,
-- email and phone of its batch, waiting for each, and holds them to commit. Each scorer takes batches of
-- ~300 events from the same queue, whose people are spread over the whole stream, so two concurrent batches
-- nearly always shared a key (benchmark: 330 of 12,500 people each, ~9 in common) and the second waited for
-- the first's whole transaction: 11 s of lock waits in a 50,000-event run with two scorers, which came out
-- no faster than one.
--
-- Now the scorer first takes its batch's locks without waiting: this returns the keys another transaction
-- holds. The scorer processes the events none of whose keys is held (and that share no key with an event
-- left out before them), commits, then processes the rest in a second transaction, waiting for the locks as
-- before. Keys are lead_process_events' own: 's:' || session_id, 'e:' || email_normalized,
-- 'p:' || phone_normalized, hashed the same way, so the two kinds of locking see each other.
CREATE FUNCTION lead_try_lock_keys(p_keys TEXT[]) RETURNS TEXT[] LANGUAGE sql VOLATILE AS $$
    SELECT COALESCE(array_agg(key), '{}')
    FROM (SELECT DISTINCT key FROM unnest(p_keys) AS key WHERE key IS NOT NULL) AS keys
    WHERE NOT pg_try_advisory_xact_lock(hashtextextended(key, 7))
$$;
