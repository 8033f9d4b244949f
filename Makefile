# weir developer tasks. Python tooling lives in the project-local .venv/ (scripts/venv.sh).
# The two commands of the README: `make run` and `make test`.

VENV := .venv
PY := $(VENV)/bin/python
CARGO ?= cargo

SAMPLE_DATA := pipelines/data/flights-2013-01-01-02.jsonl
FULL_DATA := target/data/flights-2013.jsonl

.PHONY: run test build lint venv packaging data-sample data-full data-tables tansu kafka bench

## run: build weir, run pipelines/flight-delays.yaml on the embedded broker with the sample flights, print its output
run: build
	./target/debug/weir lint pipelines/
	./target/debug/weir dev pipelines/flight-delays.yaml --input flights=$(SAMPLE_DATA)

## test: install what the tests need (.venv with Tansu, Apache Kafka in .kafka/, the full-year flights) and run every test
test: venv data-full data-tables packaging
	$(CARGO) build --bins
	./target/debug/weir lint pipelines/
	./target/debug/weir test pipelines/
	WEIR_KAFKA="$$(scripts/kafka.sh path)" WEIR_TANSU="$$(scripts/tansu.sh path)" $(CARGO) test --all-targets

## build: the weir binary (debug)
build:
	$(CARGO) build --bins

## lint: formatting and clippy, as before every commit
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

## venv: create/refresh .venv/ from scripts/requirements.txt (no-op when up to date)
venv:
	@scripts/venv.sh

## packaging: hadolint the Dockerfile; helm lint, render and validate charts/weir; check the dashboard and alerts
packaging: venv
	scripts/check-packaging.sh

## data-sample: regenerate the committed 2-day sample (2013-01-01..02)
data-sample: venv
	$(PY) scripts/flights_to_jsonl.py --limit-days 2 --out $(SAMPLE_DATA)

## data-full: the whole year 2013 into target/ (only if missing or older than its script)
data-full: $(FULL_DATA)

$(FULL_DATA): scripts/flights_to_jsonl.py | venv
	$(PY) scripts/flights_to_jsonl.py --out $@

## data-tables: the whole year's weather into target/ (only if missing); the committed join tables are pipelines/data/{weather-2013-01-01-02,planes}.jsonl
WEATHER_DATA := target/data/weather-2013.jsonl
data-tables: $(WEATHER_DATA)

$(WEATHER_DATA): scripts/nyc_tables_to_jsonl.py | venv
	$(PY) scripts/nyc_tables_to_jsonl.py --table weather --out $@

## tansu: ensure the Tansu broker binary is installed and print its path
tansu:
	@scripts/tansu.sh path

## kafka: ensure Apache Kafka 4.4 (Maven Central) is in .kafka/ and print how to start a node
kafka:
	@scripts/kafka.sh

## bench: weir against a raw rdkafka loop, hand-written serde_json, a hand-written window program, Kafka Streams and Flink on Apache Kafka (WEIR_BENCH_BROKER=tansu: on Tansu), 1M records (tests/bench/), report in target/bench/results.md; then the engine alone, no Kafka (benches/engine.rs, criterion)
bench: venv
	$(CARGO) build --release --bins
	scripts/bench-peers.sh
	WEIR_KAFKA="$$(scripts/kafka.sh path)" WEIR_TANSU="$$(scripts/tansu.sh path)" $(CARGO) bench --bench pipeline
	$(CARGO) bench --bench engine -- --measurement-time 5 --warm-up-time 1
