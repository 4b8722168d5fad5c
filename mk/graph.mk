# graph.mk - the knowledge graph (issue 5; docs/GRAPH.md): the LLM entity
# extractor and the remote reranker talk HTTP through libcurl.
#
#   make bench-graph   SciFact: graph and hybrid+graph latency, nDCG@10 of
#                      hybrid with/without enable_graph and rerank, ingest
#                      cost of the built-in extractor (one table)

LIBS += -lcurl

.PHONY: bench-graph
bench-graph: build/engram
	bench/graph_scifact.sh
