-- Indexes for stores of a million manifests. The collector's check "does a
-- manifest of this repository reference this blob" had only (repo, ...) or
-- (blob_digest) to go by, so it read every manifest_blobs row of the
-- repository (or of the blob, for a base layer every image shares) once per
-- link: quadratic. Nothing looks blobs up across repositories, so the
-- blob-only index goes.
CREATE INDEX manifest_blobs_repo_blob ON manifest_blobs(repo, blob_digest);
DROP INDEX manifest_blobs_blob;
-- Stale upload sessions are looked up by time.
CREATE INDEX uploads_updated_at ON uploads(updated_at);
{{- if .ByteOrder}}
-- Tag lists and _catalog are ordered byte-wise (COLLATE "C"), which the
-- primary keys, in the database's collation, cannot serve: without these,
-- every page sorts the whole repository's tags, or every repository.
CREATE INDEX tags_name_bytes ON tags(repo, name{{.ByteOrder}});
CREATE INDEX repositories_name_bytes ON repositories(name{{.ByteOrder}});
{{- end}}
