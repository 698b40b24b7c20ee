# Jifen: `make run` starts the demo site, a Celery worker and beat; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
PORT ?= 8000
# The demo runs with DEBUG on unless the environment says otherwise.
RUN_ENV := DEBUG=$${DEBUG:-true} PATH="$(BIN):$$PATH"

.PHONY: install run test lint clean messages

$(VENV)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

install: $(VENV)/.installed

run: install
	$(RUN_ENV) python manage.py migrate --noinput
	$(RUN_ENV) python manage.py demo_setup
	@echo "Starting web (http://127.0.0.1:$(PORT)), worker and beat; Ctrl-C stops all three."
	@$(RUN_ENV) PORT=$(PORT) python -m config.procfile Procfile

# The style holds without anyone remembering it: ruff's lint and format checks run before the suite.
test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Collect the translatable strings into locale/zh_Hans/LC_MESSAGES/django.po (new ones arrive
# empty; translate them there) and compile the .mo that Django reads. Both files are committed.
# Needs GNU gettext (xgettext, msgmerge, msgfmt).
MESSAGES_ENV := DEBUG=true JIFEN_VAR_DIR=$${JIFEN_VAR_DIR:-$(CURDIR)/var}
messages: install
	$(MESSAGES_ENV) $(BIN)/python manage.py makemessages -l zh_Hans --no-obsolete --ignore=.venv --ignore=var --ignore=bench --ignore=tests
	msgfmt --check-format -o /dev/null locale/zh_Hans/LC_MESSAGES/django.po
	$(MESSAGES_ENV) $(BIN)/python manage.py compilemessages -l zh_Hans --ignore=.venv

clean:
	rm -rf var/celery var/test var/*.sqlite3* var/celerybeat-schedule*

# SPEC §10 benchmarks that need PostgreSQL, pgbench and Redis (see bench/README.md).
.PHONY: bench bench-p5
bench: install
	$(BIN)/python bench/p3_throughput.py
	$(BIN)/python bench/p6_latency.py
	$(BIN)/python bench/p5_admin.py $(P5_ARGS)

# P5 alone; P5_ARGS="--reuse-database --keep-database" keeps the seeded 1,000,000 entries between runs.
bench-p5: install
	$(BIN)/python bench/p5_admin.py $(P5_ARGS)
