"""Validates a JSON document against a JSON schema file with the `jsonschema` package (its
draft is taken from the schema's own `$schema`), formats included.

stdin:  {"schema": "<path of the schema file>", "document": <the document>}
stdout: {"draft": "<the validator's class>", "errors": ["<path>: <message>", ...]}
"""

import json
import sys

import jsonschema


def main():
    request = json.load(sys.stdin)
    with open(request["schema"], encoding="utf-8-sig") as f:
        schema = json.load(f)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    errors = [
        f"{'/'.join(str(p) for p in e.absolute_path)}: {e.message}"
        for e in validator.iter_errors(request["document"])
    ]
    json.dump({"draft": cls.__name__, "errors": errors}, sys.stdout)


if __name__ == "__main__":
    main()
