-- Whether a running job's claim came from JetStream's last delivery of it (max_deliver):
-- only then can no delivery come for it any more, and a lease that ran out means its
-- worker was lost. A job waiting for a redelivery (workers busy or all down) is not lost.
-- NULL: claimed by a release before this one, which swept on time alone.
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS final_delivery boolean;
