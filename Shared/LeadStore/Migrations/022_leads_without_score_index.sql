-- leads_score (001) indexed the one column the scorer changes on nearly every lead update. An UPDATE that
-- changes an indexed column cannot be a heap-only tuple update, so each rescore wrote new entries into all of
-- leads' indexes. No query reads it: the admin API sorts by id or by heat (computed), filters scores as a
-- range alongside its id order, and the analytics' score histogram reads every lead anyway (idx_scan 0 over
-- the whole benchmark). Without it a rescore changes no indexed column and, with 020's fillfactor, is
-- usually written in place of the old version on the same page.
DROP INDEX IF EXISTS leads_score;
