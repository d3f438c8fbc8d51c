PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DB := $(VENV)/demo/chat.db

.PHONY: demo test lint bench clean

$(BIN)/imsg: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

demo: $(BIN)/imsg
	rm -rf $(VENV)/demo && mkdir -p $(VENV)/demo
	$(BIN)/imsg sim init $(DEMO_DB) --demo
	@echo '$$ imsg chats --db $(DEMO_DB)'
	@$(BIN)/imsg chats --db $(DEMO_DB)
	@echo
	@echo '$$ imsg history --chat-id 1 --db $(DEMO_DB) --attachments'
	@$(BIN)/imsg history --chat-id 1 --db $(DEMO_DB) --attachments
	@echo
	@echo '$$ imsg history --chat-id 3 --limit 3 --db $(DEMO_DB) --json'
	@$(BIN)/imsg history --chat-id 3 --limit 3 --db $(DEMO_DB) --json
	@echo
	@$(BIN)/python -m imsg.sim.demo_rpc $(DEMO_DB)
	@echo
	@$(BIN)/python -m imsg.sim.demo_gateway $(DEMO_DB)

test: $(BIN)/imsg lint
	$(BIN)/pytest -q

lint: $(BIN)/imsg
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

bench: $(BIN)/imsg
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info
