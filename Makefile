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

.PHONY: install system-packages run test test-fast bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[models,bench,vad,voices,listen,test]'
	touch $(STAMP)

install: $(STAMP)

# `specvoice listen` needs the PortAudio library (sounddevice loads it at import). Installed where apt-get
# can (root, or passwordless sudo); elsewhere its tests skip and say why.
system-packages:
	@ldconfig -p 2>/dev/null | grep -q libportaudio.so.2 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] && echo "" || echo "sudo -n" ); \
	  ( $$SUDO apt-get install -y -qq libportaudio2 || { $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq libportaudio2; } ) >/dev/null 2>&1 \
	  || echo "note: could not install libportaudio2; listen's PortAudio tests will skip"; }

run: $(STAMP)
	$(BIN)/specvoice transcribe $(SPEECH)/whisper_jfk.wav --stats

test: $(STAMP) system-packages
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not real"

bench: $(STAMP)
	$(BIN)/specvoice bench --manifest $(SPEECH)/manifest.jsonl -o bench-out

clean:
	rm -rf $(VENV) bench-out .pytest_cache
