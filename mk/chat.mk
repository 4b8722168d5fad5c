# chat.mk - chat, the LLM connector and memories (issue 6; docs/CHAT.md).
#
#   make bench-chat   engram's time to the first SSE delta over HTTP on
#                     SciFact, with a stub LLM that answers at once and with
#                     the extractive answerer (p50/p99)

LIBS += -lcurl

.PHONY: bench-chat

bench-chat: build/engram
	python3 bench/chat_scifact.py --binary build/engram
