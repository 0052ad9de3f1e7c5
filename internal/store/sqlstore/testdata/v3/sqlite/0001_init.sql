-- Ferry metadata schema, version 1. Kept to types and statements that
-- PostgreSQL accepts too (BLOB becomes BYTEA there), keyed by repository
-- name so the hot path is one indexed lookup without joins on ids.
CREATE TABLE repositories (
    name       TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);

CREATE TABLE blob_links (
    repo   TEXT   NOT NULL REFERENCES repositories(name),
    digest TEXT   NOT NULL,
    size   BIGINT NOT NULL,
    PRIMARY KEY (repo, digest)
);
CREATE INDEX blob_links_digest ON blob_links(digest);

CREATE TABLE manifests (
    repo          TEXT   NOT NULL REFERENCES repositories(name),
    digest        TEXT   NOT NULL,
    media_type    TEXT   NOT NULL,
    size          BIGINT NOT NULL,
    content       BLOB   NOT NULL,
    subject       TEXT,
    artifact_type TEXT,
    annotations   TEXT,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (repo, digest)
);
CREATE INDEX manifests_subject ON manifests(repo, subject);

CREATE TABLE tags (
    repo       TEXT   NOT NULL REFERENCES repositories(name),
    name       TEXT   NOT NULL,
    digest     TEXT   NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (repo, name)
);
CREATE INDEX tags_digest ON tags(repo, digest);

-- What a manifest references: blobs (config, layers) and, for an index,
-- child manifests. Garbage collection walks these.
CREATE TABLE manifest_blobs (
    repo            TEXT NOT NULL,
    manifest_digest TEXT NOT NULL,
    blob_digest     TEXT NOT NULL,
    PRIMARY KEY (repo, manifest_digest, blob_digest)
);
CREATE INDEX manifest_blobs_blob ON manifest_blobs(blob_digest);

CREATE TABLE manifest_children (
    repo          TEXT NOT NULL,
    parent_digest TEXT NOT NULL,
    child_digest  TEXT NOT NULL,
    PRIMARY KEY (repo, parent_digest, child_digest)
);
CREATE INDEX manifest_children_child ON manifest_children(repo, child_digest);

CREATE TABLE uploads (
    id         TEXT PRIMARY KEY,
    repo       TEXT   NOT NULL,
    "offset"   BIGINT NOT NULL,
    algorithm  TEXT   NOT NULL,
    hash_state BLOB,
    started_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
