# Two entry points for a newcomer on a fresh Debian machine: `make demo` and `make test`.
# Both bootstrap what they need: a virtualenv with the package and its test extras, and
# (as root, when missing) Debian's iptables, nftables and helpers.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.kp-audit-installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml scripts/bootstrap
	@scripts/bootstrap "$(PYTHON)" "$(VENV)"
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/kp-audit demo --output-dir reports

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy auditor/
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy auditor/

bench: $(STAMP)
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
