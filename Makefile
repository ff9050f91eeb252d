# Two commands do everything from a fresh clone:
#   make run    transcribe a real clip offline with the built-in default model (base; drafted by tiny.en on CUDA)
#   make test   the whole test suite (tiny random models + real offline Whisper weights on ../shared/speech),
#               then the Triton kernels in the interpreter (make test-kernels)
# Both create .venv first. torch is pinned to the CPU build that installs from local disk here;
# an unpinned torch would pull a multi-GB CUDA build.

PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
SPEECH ?= ../shared/speech
STAMP = $(VENV)/.installed
KERNELS_STAMP = $(VENV)/.installed-kernels

.PHONY: install system-packages run test test-fast test-kernels bench clean

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[models,bench,vad,voices,listen,cluster,test]'
	touch $(STAMP)

install: $(STAMP)

# `specvoice listen` needs the PortAudio library (sounddevice loads it at import); the German speech test
# synthesizes its clip with espeak-ng. Installed where apt-get can (root, or passwordless sudo); elsewhere
# their tests skip and say why.
SUDO = $$( [ "$$(id -u)" = 0 ] && echo "" || echo "sudo -n" )
APT_INSTALL = ( $(SUDO) apt-get install -y -qq $(1) || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $(1); } ) >/dev/null 2>&1

system-packages:
	@ldconfig -p 2>/dev/null | grep -q libportaudio.so.2 || $(call APT_INSTALL,libportaudio2) \
	  || echo "note: could not install libportaudio2; listen's PortAudio tests will skip"
	@command -v espeak-ng >/dev/null || $(call APT_INSTALL,espeak-ng) \
	  || echo "note: could not install espeak-ng; the German speech test will skip"

# triton (about 300 MB) only for the kernels: without a GPU they run in Triton's CPU interpreter, which must be
# switched on before triton is first imported, hence a run of its own; a second run compiles every kernel
# for sm_80/sm_90 GPUs (no GPU needed), which the interpreter cannot check.
$(KERNELS_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[models,bench,vad,voices,listen,cluster,test,kernels]'
	touch $(KERNELS_STAMP)

test-kernels: $(KERNELS_STAMP)
	TRITON_INTERPRET=1 $(BIN)/python -m pytest -q tests/test_kernels.py
	$(BIN)/python -m pytest -q -W ignore::UserWarning tests/test_kernels_compile.py

run: $(STAMP)
	$(BIN)/specvoice transcribe $(SPEECH)/whisper_jfk.wav --stats

test: $(STAMP) $(KERNELS_STAMP) system-packages
	$(BIN)/python -m pytest -q --ignore=tests/test_kernels.py --ignore=tests/test_kernels_compile.py
	$(MAKE) test-kernels

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not real"

bench: $(STAMP)
	$(BIN)/specvoice bench --manifest $(SPEECH)/manifest.jsonl -o bench-out

clean:
	rm -rf $(VENV) bench-out .pytest_cache
