# The two commands a newcomer needs: `make example` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
API_PORT ?= 8765
EXAMPLE := example_project

.PHONY: example test test-postgres test-mariadb lint docs install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# Set up and run the example: migrate, seed, serve, drive a few requests
# through a real runserver, list the traces, generate a test from one.
example: install
	rm -f $(EXAMPLE)/db.sqlite3
	cd $(EXAMPLE) && ../$(BIN)/python manage.py migrate -v 0 && ../$(BIN)/python manage.py seed_example
	bash scripts/run_example.sh "$(BIN)/python" $(PORT) $(API_PORT)

lint: install
	$(BIN)/ruff check kolo_django tests example_project
	$(BIN)/ruff format --check kolo_django tests example_project

docs: install
	$(BIN)/mkdocs build --strict -q -d build/site

# The test suite (SQLite), with lint and the docs build.
test: lint docs
	$(BIN)/python -m pytest -n 2 --dist loadgroup -p no:cacheprovider

test-postgres: install
	KOLO_TEST_DB=postgres $(BIN)/python -m pytest -n 2 --dist loadgroup -p no:cacheprovider

# Needs MariaDB's client headers for mysqlclient (Debian: libmariadb-dev).
test-mariadb: install
	$(BIN)/python -m pip install -q "mysqlclient>=2.2"
	KOLO_TEST_DB=mariadb $(BIN)/python -m pytest -n 2 --dist loadgroup -p no:cacheprovider

clean:
	rm -rf $(VENV) build $(EXAMPLE)/db.sqlite3 artifacts
