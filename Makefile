.PHONY: bootstrap serve test test-clock-ahead lint format ci

bootstrap:
	scripts/bootstrap

serve:
	scripts/serve

test:
	scripts/test

test-clock-ahead:
	scripts/test-clock-ahead

lint:
	scripts/lint

format:
	.venv/bin/ruff format .

ci:
	bash .ci/run
