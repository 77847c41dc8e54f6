# openapi.yaml checks and the server benchmark (included by the Makefile's `-include mk/*.mk`).

.PHONY: check-openapi schemathesis bench-server

## check-openapi: openapi.yaml is valid OpenAPI 3.1 (openapi-spec-validator) and keeps the project's rules.
check-openapi:
	@bash scripts/check-openapi.sh

## schemathesis: start prepaged (release) on a free port with a token; schemathesis, every check, 50 examples, seed 1.
schemathesis: deps
	$(RELEASE) --product prepaged
	bash scripts/schemathesis.sh --serve .build/release/prepaged

## bench-server: prepaged against nginx (wrk, taskset); prints req/s, latency, CPU/request, RSS, idle-session memory, batch.
bench-server: deps
	$(RELEASE) --product prepaged
	PREPAGED=.build/release/prepaged bash scripts/bench-server.sh
