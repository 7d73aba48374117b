-- lead_contact_key (025) as one expression, so PostgreSQL inlines it into the scorer's interaction INSERT. Its
-- body read the keys from lead_contact_keys in a FROM clause, which PostgreSQL does not inline: each of the
-- INSERT's rows ran it as a query of its own (200,400 nested calls in a scorer benchmark, pg_stat_statements
-- track = all), 3.9 us a call against 0.11 us inlined (psql, 20,000 rows, the same values for all of them).
-- The same key as before: the email's, else the phone's, hashed as lead_contact_keys and the advisory locks
-- hash them; NULL for an anonymous event.

CREATE OR REPLACE FUNCTION lead_contact_key(p_email TEXT, p_phone TEXT) RETURNS BIGINT LANGUAGE sql IMMUTABLE AS $$
    SELECT COALESCE(hashtextextended('e:' || p_email, 7), hashtextextended('p:' || p_phone, 7))
$$;
