-- Who opened each upload session (a user name, or the client address of
-- an unauthenticated client), so open sessions can be limited per user
-- across replicas. Sessions from before have no owner.
ALTER TABLE uploads ADD COLUMN owner TEXT NOT NULL DEFAULT '';
CREATE INDEX uploads_owner ON uploads(owner);
