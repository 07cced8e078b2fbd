-- When a job's result event reached the broker. A result stored but not yet announced
-- (the broker was away at that moment) is announced by the next delivery of the job.
ALTER TABLE jobs ADD COLUMN result_published_at timestamptz;
