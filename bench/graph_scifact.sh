#!/bin/sh
# make bench-graph: see bench/graph_scifact.py
cd "$(dirname "$0")/.." && exec python3 bench/graph_scifact.py "$@"
