"""Bulk API 2.0 jobs through the raw endpoints, shared by reading and writing: `polling` waits
for any job, `query` runs a query job and pages through its results; the ingest side of a
write lives with the writer, which records each job before its upload."""
