# Ingestion benchmark (issue 4): SciFact through the HTTP API, queries during
# ingestion, beside SQLite FTS5's bulk index.
.PHONY: bench-ingest
bench-ingest: build/engram
	python3 bench/ingest_scifact.py
