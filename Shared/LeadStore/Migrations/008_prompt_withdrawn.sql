-- A prompt decided before a (late-arriving) dismissal or consent withdrawal that predates it is withdrawn:
-- the visitor had already said no. Happens when two conversion workers apply one session's events out of order.
ALTER TABLE conversion_prompts DROP CONSTRAINT conversion_prompts_status_check;
ALTER TABLE conversion_prompts ADD CONSTRAINT conversion_prompts_status_check
    CHECK (status IN ('open', 'converted', 'expired', 'withdrawn'));
