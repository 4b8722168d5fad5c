# Document extraction (src/ingest/extract*.c, zip.c): libraries and build
# switches. See docs/EXTRACTION.md.
#
#   make PDF=0   build without MuPDF (AGPL-3.0): PDFs are then 415
#   make OCR=1   build with Tesseract OCR for PNG/JPEG/TIFF and image-only
#                PDF pages (default off: images are then 415)
#
# The switches are recorded in build/extract.cfg; changing them rebuilds the
# extraction objects and relinks, so `make clean` is never needed.

PDF ?= 1
OCR ?= 0

LIBS += -lexpat -lz

ifeq ($(PDF),1)
# Debian's libmupdf-dev ships only static archives; libmupdf-third.a holds
# the bundled pieces Debian does not package separately. Order matters.
LIBS += -lmupdf -lmupdf-third -lmujs -lgumbo -lopenjp2 -ljbig2dec -ljpeg -lfreetype -lharfbuzz -lz -lm
else
EXTRACT_DEFS += -DENGRAM_NO_PDF
endif

ifeq ($(OCR),1)
LIBS += -ltesseract -lleptonica
EXTRACT_DEFS += -DENGRAM_WITH_OCR
endif

REL_CFLAGS += $(EXTRACT_DEFS)
ASAN_CFLAGS += $(EXTRACT_DEFS)
CSTD += $(EXTRACT_DEFS)

EXTRACT_CFG := PDF=$(PDF) OCR=$(OCR)
EXTRACT_STAMP := $(shell mkdir -p build && \
	if [ "$$(cat build/extract.cfg 2>/dev/null)" != "$(EXTRACT_CFG)" ]; then \
		echo "$(EXTRACT_CFG)" > build/extract.cfg; fi; echo build/extract.cfg)
EXTRACT_OBJS := $(wildcard src/ingest/extract*.c)
$(EXTRACT_OBJS:src/%.c=build/rel/%.o) $(EXTRACT_OBJS:src/%.c=build/asan/%.o): $(EXTRACT_STAMP)

build/asan/tests/test_extract: tests/unit/extract_fixtures.h
