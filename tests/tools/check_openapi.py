"""Checks earshot's OpenAPI contracts with the venv's openapi-spec-validator and jsonschema.

    check_openapi.py SPEC                  the document is valid OpenAPI, and every example in it
                                           matches the schema beside it
    check_openapi.py SPEC SCHEMA < JSON    JSON matches components.schemas.SCHEMA

Exits 1 naming what does not match.
"""

import json
import sys

import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate


def validator(spec, schema):
    # The whole document is the root, so `#/components/...` references resolve.
    root = dict(spec)
    root["$ref"] = schema if schema.startswith("#") else f"#/components/schemas/{schema}"
    return Draft202012Validator(root)


def problems(spec, schema, instance):
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in validator(spec, schema).iter_errors(instance)
    ]


def examples(spec):
    """(where, schema reference, example) for every media type with both."""
    for path, item in spec.get("paths", {}).items():
        for method, operation in item.items():
            bodies = [("request", operation.get("requestBody", {}))]
            bodies += [(f"response {code}", r) for code, r in operation.get("responses", {}).items()]
            for name, body in bodies:
                for media, content in body.get("content", {}).items():
                    ref = content.get("schema", {}).get("$ref")
                    if ref and "example" in content:
                        yield f"{method.upper()} {path} {name} {media}", ref, content["example"]


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = yaml.safe_load(f)
    found = []
    if len(sys.argv) == 2:
        validate(spec)
        checked = 0
        for where, ref, example in examples(spec):
            checked += 1
            found += [f"example of {where}: {p}" for p in problems(spec, ref, example)]
        if checked == 0:
            found.append("no examples to check")
    else:
        found = problems(spec, sys.argv[2], json.load(sys.stdin))
    for problem in found:
        print(problem, file=sys.stderr)
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
