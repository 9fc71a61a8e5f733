# The two commands of the README:
#   make book   build the rendered book (installs everything into .venv, executes every notebook)
#   make test   run every test: unit tests, nbval over every notebook, the browser check of every page
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HTML := _build/html
export DIFFNOTES_PROFILE ?= quick
# Tests run on every core at once (pytest-xdist, one notebook per worker), each process on one thread: small
# tensors run fastest that way, and stored outputs are made (make outputs) under the same setting they are checked.
PYTEST := OMP_NUM_THREADS=1 $(BIN)/python -m pytest -p no:cacheprovider -n $(shell nproc 2>/dev/null || echo 2) --dist loadfile
NBVAL := --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg

.PHONY: book test unit notebooks browser chromium outputs clean

$(BIN)/.book-installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

$(BIN)/.test-installed: $(BIN)/.book-installed requirements-test.txt
	$(BIN)/python -m pip install --quiet -r requirements-test.txt
	touch $@

book: $(BIN)/.book-installed
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "The book is ready: open $(abspath $(HTML))/index.html"

# Browser tests need Debian's chromium; as root with apt, install it when it is missing.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "The browser test needs Chromium: sudo apt-get install chromium"; exit 1; fi; }

unit: $(BIN)/.test-installed
	$(PYTEST) tests -m "not browser" -q

notebooks: $(BIN)/.test-installed
	$(PYTEST) $(NBVAL) book -q

browser: $(BIN)/.test-installed chromium
	$(PYTEST) tests -m browser -q

test: $(BIN)/.test-installed chromium book
	$(BIN)/python tools/notebooks.py check book/*.ipynb
	$(PYTEST) $(NBVAL) tests book -q

# Re-execute the notebooks in the quick profile and store only their checked text outputs.
outputs: $(BIN)/.book-installed
	OMP_NUM_THREADS=1 $(BIN)/python tools/notebooks.py refresh book/*.ipynb

clean:
	rm -rf _build
