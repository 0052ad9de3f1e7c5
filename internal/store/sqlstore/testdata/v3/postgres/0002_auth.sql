-- Users, their grants per repository prefix, robot tokens and the key that
-- signs bearer tokens. Types PostgreSQL accepts too.
CREATE TABLE users (
    name          TEXT PRIMARY KEY,
    password_hash TEXT   NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE grants (
    username TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    prefix   TEXT NOT NULL,
    perm     TEXT NOT NULL,
    PRIMARY KEY (username, prefix, perm)
);

CREATE TABLE robot_tokens (
    id          TEXT PRIMARY KEY,
    username    TEXT   NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    secret_hash TEXT   NOT NULL,
    description TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX robot_tokens_user ON robot_tokens(username);

-- One row: created by whichever replica starts first (INSERT ... ON
-- CONFLICT DO NOTHING), read by all, so every replica verifies every
-- other's tokens.
CREATE TABLE signing_keys (
    id     INTEGER PRIMARY KEY,
    secret TEXT NOT NULL
);
