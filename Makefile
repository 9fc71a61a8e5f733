# The two commands of the README:
#   make book   build the rendered book (installs everything into .venv, executes every notebook)
#   make test   run every test: unit tests, every notebook's checked outputs, the browser check of every page
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HTML := _build/html
export DIFFNOTES_PROFILE ?= quick
# Tests run on every core at once (pytest-xdist, one notebook per worker), each process on one thread: small
# tensors run fastest that way, and stored outputs are made (make outputs) under the same setting they are checked.
NPROC := $(shell nproc 2>/dev/null || echo 2)
PYTEST := OMP_NUM_THREADS=1 $(BIN)/python -m pytest -p no:cacheprovider -n $(NPROC) --dist loadfile
NBVAL := --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg
# What the book is made of: when one of these is newer than the last build, make book builds it again (every page:
# a change of the package can change any chapter's outputs); otherwise make book and make test leave it as it is.
BOOK_INPUTS := _config.yml _toc.yml references.bib $(wildcard _static/*) tools/faithful_outputs.py tools/execute_notebooks.py \
	$(wildcard book/*) $(shell find diffnotes -name '*.py') $(wildcard diffnotes/weights/*) \
	$(wildcard benchmarks/results/*.json)
# One stamp per profile: a book built in another profile is built again.
BUILT := _build/.book-built-$(DIFFNOTES_PROFILE)
# The build executes the notebooks this many at a time, each on one thread: one per core. In the full profile one at
# a time, as two trainings would share one GPU.
BOOK_JOBS ?= $(if $(filter full,$(DIFFNOTES_PROFILE)),1,$(NPROC))
# Where the build's executions wait for it (myst-nb's default place): made afresh for each build, removed after it.
EXEC_CACHE := _build/.jupyter_cache

.PHONY: book test unit notebooks browser slow chromium outputs pdf assignments clean

$(BIN)/.book-installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

$(BIN)/.test-installed: $(BIN)/.book-installed requirements-test.txt
	$(BIN)/python -m pip install --quiet -r requirements-test.txt
	touch $@

book: $(BUILT)
	@echo "The book is ready: open $(abspath $(HTML))/index.html"

# The build executes every notebook once (the stored outputs are made under OMP_NUM_THREADS=1, see outputs) and
# keeps the executed copies in _build/jupyter_execute/, where the tests compare their checked outputs. The notebooks
# are executed first, BOOK_JOBS at a time, into an empty jupyter-cache (tools/execute_notebooks.py: a notebook that
# fails stops make here); Jupyter Book, in cache mode (_config.yml), then takes every notebook's outputs from it
# instead of executing the notebooks one after another. The cache is matched by code only, so it lives for one
# build: emptied before, removed after (a change of the package executes every notebook again).
# The stamp carries the time the build started: a file changed while it ran makes the next make build again.
$(BUILT): $(BIN)/.book-installed $(BOOK_INPUTS)
	rm -f _build/.book-built-*
	mkdir -p _build && touch $@.started
	OMP_NUM_THREADS=1 $(BIN)/python tools/execute_notebooks.py --cache $(EXEC_CACHE) --jobs $(BOOK_JOBS) \
	  --times benchmarks/results/notebooks-cpu.json book/*.ipynb || { rm -rf $(EXEC_CACHE); exit 1; }
	OMP_NUM_THREADS=1 $(BIN)/jupyter-book build . -W -n --keep-going --all || { rm -rf $(EXEC_CACHE); exit 1; }
	rm -rf $(EXEC_CACHE)
	mv $@.started $@

# Browser tests need Debian's chromium; as root with apt, install it when it is missing.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "The browser test needs Chromium: sudo apt-get install chromium"; exit 1; fi; }

unit: $(BIN)/.test-installed
	$(PYTEST) tests -m "not browser and not book and not slow" -q

# Runs every notebook under nbval, apart from the book build (make test compares the build's executed copies).
notebooks: $(BIN)/.test-installed
	$(PYTEST) $(NBVAL) book -q

browser: $(BIN)/.test-installed chromium
	$(PYTEST) tests -m browser -q

# The whole book as one PDF, offline, printed by the system Chromium from the built HTML (make test checks it).
pdf: $(BIN)/.test-installed chromium book
	$(BIN)/python tools/pdf.py --out _build/pdf/diffnotes.pdf

# Minutes of CPU: the shipped model's quality by its full 1,000-sample protocol (make test checks its golden run).
slow: $(BIN)/.test-installed
	$(PYTEST) tests -m slow -q

# Every notebook is executed once, by the book build; the tests compare its checked outputs with the stored ones.
test: $(BIN)/.test-installed chromium book
	$(BIN)/python tools/notebooks.py check book/*.ipynb
	$(PYTEST) tests -m "not slow" -q

# Re-execute the notebooks in the quick profile and store only their checked text outputs.
outputs: $(BIN)/.book-installed
	OMP_NUM_THREADS=1 $(BIN)/python tools/notebooks.py refresh book/*.ipynb

# The course assignments: the student versions (no solutions, no hidden tests) and the solution versions, made from
# assignments/source/ offline; the book's "For instructors" page says how to release, collect and grade them.
assignments: $(BIN)/.book-installed
	$(BIN)/python -m diffnotes.grading release assignments/source --release assignments/release --solution assignments/solution

clean:
	rm -rf _build
