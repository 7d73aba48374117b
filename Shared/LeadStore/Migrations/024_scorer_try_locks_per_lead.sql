-- Two scorers waited on each other's leads through keys they did not share. 018's try-locks cover a batch's
-- sessions, emails and phones, but one person's lead is reached through several: an anonymous event in one of
-- their sessions (key s:S1) and a contact event in another (s:S2, e:E) touch the same lead row without a key
-- in common, and the second batch then waited on the row lock until the first committed. Sampling
-- pg_stat_activity every 50 ms through a 50,000-event run with two scorers (12,500 people, three sessions each)
-- found the scorers' backends waiting on another transaction (Lock: transactionid) in 118 of 434 samples
-- inside lead_process_events, and on advisory locks in 20 more.
--
-- The try-lock now also resolves each key to the open lead it reaches (the session's linked lead, the lead
-- with that email or phone) and try-locks that lead ('l:' || id, hashed like the others). A key whose lead
-- another transaction holds is returned as held, so the scorer defers its events to its second transaction
-- as it does for a held session. Only try-lockers take lead keys, so this removes waits, not all of them:
-- a second transaction still waits for rows (and lead_process_events' own locks are unchanged).
--
-- Only for batches of 100 keys or more (about 75 events). At 200 leads/s a scorer's batches are a few events:
-- two scorers rarely touch one lead there, and a short transaction makes a wait short, so the lookups would
-- be cost without use. (Two pairs of end-to-end runs had suggested they slowed that path, 202 → lead row
-- median 74 and 135 ms against 49 and 85 ms with 018's try-lock; the run after this threshold measured 84 ms,
-- so that was this machine's drift.) Small batches try-lock their keys as 018 did.
CREATE OR REPLACE FUNCTION lead_try_lock_keys(p_keys TEXT[]) RETURNS TEXT[] LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_held TEXT[];
BEGIN
    IF cardinality(p_keys) < 100 THEN
        SELECT COALESCE(array_agg(key), '{}') INTO v_held
        FROM (SELECT DISTINCT key FROM unnest(p_keys) AS key WHERE key IS NOT NULL) AS keys
        WHERE NOT pg_try_advisory_xact_lock(hashtextextended(key, 7));
        RETURN v_held;
    END IF;
    WITH keys AS MATERIALIZED (
        SELECT DISTINCT key FROM unnest(p_keys) AS key WHERE key IS NOT NULL
    ), held_keys AS MATERIALIZED (
        SELECT key FROM keys WHERE NOT pg_try_advisory_xact_lock(hashtextextended(key, 7))
    ), owners AS MATERIALIZED (
        SELECT k.key, o.lead_id
        FROM keys k
        CROSS JOIN LATERAL (
            SELECT sl.lead_id FROM session_leads sl JOIN leads l ON l.id = sl.lead_id
            WHERE left(k.key, 2) = 's:' AND sl.session_id = substr(k.key, 3) AND lead_is_open(l.status)
            UNION ALL
            SELECT l.id FROM leads l
            WHERE left(k.key, 2) = 'e:' AND l.email_normalized = substr(k.key, 3) AND lead_is_open(l.status)
            UNION ALL
            SELECT l.id FROM leads l
            WHERE left(k.key, 2) = 'p:' AND l.phone_normalized = substr(k.key, 3) AND lead_is_open(l.status)
        ) o
    ), held_leads AS MATERIALIZED (
        SELECT d.lead_id FROM (SELECT DISTINCT lead_id FROM owners ORDER BY lead_id) d
        WHERE NOT pg_try_advisory_xact_lock(hashtextextended('l:' || d.lead_id, 7))
    )
    SELECT COALESCE(array_agg(x.key), '{}') INTO v_held
    FROM (
        SELECT key FROM held_keys
        UNION
        SELECT o.key FROM owners o JOIN held_leads h ON h.lead_id = o.lead_id
    ) x;
    RETURN v_held;
END
$$;
