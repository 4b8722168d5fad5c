# cli.mk - the client commands (engram ingest/search/ask/collections/docs, src/cli/) use libcurl.
LIBS += -lcurl
