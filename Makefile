.PHONY: bootstrap serve test lint format ci

bootstrap:
	scripts/bootstrap

serve:
	scripts/serve

test:
	scripts/test

lint:
	scripts/lint

format:
	.venv/bin/ruff format .

ci:
	bash .ci/run
