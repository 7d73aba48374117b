-- A worker that writes its outbox rows from Swift (lead-alerts, lead-conversion) publishes them itself as soon
-- as the transaction has committed, instead of waking the relay to claim them again: two round trips and a
-- scheduling hop less on the way of every alert and prompt. Such a row is leased to that worker until
-- `leased_until`; relays take it only once the lease has ended (the worker crashed, the broker did not confirm,
-- or the row could not be deleted), under the same message_id. Rows without a lease (the scorer's) are the
-- relay's at once, as before.
ALTER TABLE outbox ADD COLUMN leased_until TIMESTAMPTZ;
