#!/usr/bin/env bash
# Validates openapi.yaml against the OpenAPI 3.1 specification with
# openapi-spec-validator (PyPI), installing it quietly if it is missing.
#
# Usage: scripts/check-openapi.sh [path/to/openapi.yaml]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
spec="${1:-$root/openapi.yaml}"

if ! command -v openapi-spec-validator >/dev/null 2>&1; then
    echo "check-openapi: installing openapi-spec-validator (pip)" >&2
    python3 -m pip install --quiet --disable-pip-version-check openapi-spec-validator \
        || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages openapi-spec-validator
fi

# The validator reports the version it detects; insist on 3.1.
if ! grep -qE '^openapi: 3\.1\.[0-9]+' "$spec"; then
    echo "check-openapi: $spec is not OpenAPI 3.1" >&2
    exit 1
fi
openapi-spec-validator "$spec"

# The project's own rules (issue 3): every operation has an operationId, every
# object schema says what is required and describes itself, every property is
# described, and every error response is application/problem+json. Issue 13:
# every request body and every response of every operation carries examples,
# and every example is valid against its schema (JSON Schema 2020-12, as
# OpenAPI 3.1 reads it), so that what a reader copies works.
python3 - "$spec" <<'PY'
import sys, yaml
spec = yaml.safe_load(open(sys.argv[1]))
problems = []
resolve = lambda ref: spec["components"]["responses"][ref.split("/")[-1]]
import jsonschema
def example_values(media):
    if "example" in media:
        yield "example", media["example"]
    for name, ex in media.get("examples", {}).items():
        if "$ref" in ex:
            ex = spec["components"]["examples"][ex["$ref"].split("/")[-1]]
        yield name, ex["value"]
def check_examples(where, content):
    for mtype, media in content.items():
        found = list(example_values(media))
        if not found:
            problems.append(f"{where} {mtype}: no example")
        root = dict(media.get("schema", {}), components=spec["components"])
        validator = jsonschema.Draft202012Validator(root, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
        for name, value in found:
            for error in validator.iter_errors(value):
                problems.append(f"{where} {mtype} example {name}: {error.message[:200]}")
for path, item in spec["paths"].items():
    for method, op in item.items():
        if method not in ("get", "put", "post", "delete", "patch", "head", "options"):
            continue
        where = f"{method.upper()} {path}"
        if not op.get("operationId"):
            problems.append(f"{where}: no operationId")
        if "requestBody" in op:
            check_examples(f"{where} request", op["requestBody"].get("content", {}))
        for status, resp in op.get("responses", {}).items():
            if "$ref" in resp:
                resp = resolve(resp["$ref"])
            check_examples(f"{where} {status}", resp.get("content", {}))
            if str(status)[0] in "45" and list(resp.get("content", {})) != ["application/problem+json"]:
                problems.append(f"{where} {status}: not application/problem+json")
def walk(name, schema):
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "object":
        if "required" not in schema:
            problems.append(f"schema {name}: no required")
        if "description" not in schema:
            problems.append(f"schema {name}: no description")
        for prop, sub in schema.get("properties", {}).items():
            if "$ref" not in sub and "description" not in sub:
                problems.append(f"schema {name}.{prop}: no description")
            walk(f"{name}.{prop}", sub)
    for key in ("items", "additionalProperties"):
        walk(f"{name}[]", schema.get(key))
for name, schema in spec["components"]["schemas"].items():
    if "description" not in schema:
        problems.append(f"schema {name}: no description")
    walk(name, schema)
for p in problems:
    print("check-openapi:", p, file=sys.stderr)
sys.exit(1 if problems else 0)
PY
echo "check-openapi: operationIds, required, descriptions, problem+json errors, valid examples everywhere: OK"
