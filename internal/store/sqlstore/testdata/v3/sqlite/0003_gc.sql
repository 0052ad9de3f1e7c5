-- Garbage collection: when each blob link was made or last used by a
-- manifest push (links that existed before count as made now), and the
-- blobs a collector is deleting, which no one may link meanwhile.
ALTER TABLE blob_links ADD COLUMN linked_at BIGINT NOT NULL DEFAULT 0;
UPDATE blob_links SET linked_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000;
CREATE INDEX blob_links_linked_at ON blob_links(linked_at);

CREATE TABLE blob_deletions (
    digest     TEXT PRIMARY KEY,
    started_at BIGINT NOT NULL
);
