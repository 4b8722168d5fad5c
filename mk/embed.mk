# embed.mk - the embedders (issue 3; docs/EMBEDDINGS.md): the openai
# embedder talks to OpenAI-compatible /v1/embeddings services through libcurl.
# Its tests (tests/unit/test_embed_openai.c) start tests/integration/stub_openai.py
# with python3.

LIBS += -lcurl
