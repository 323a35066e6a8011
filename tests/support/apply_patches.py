#!/usr/bin/env python3
"""Applies RFC 6902 patches with the independent `jsonpatch` implementation (PyPI).

Reads a JSON list of {"doc": <object>, "patch": [<ops>]} on stdin and writes the JSON list of
patched documents on stdout. Used by tests/properties.rs so that our patches are checked by
code we did not write.
"""
import json
import sys

import jsonpatch

cases = json.load(sys.stdin)
out = []
for i, case in enumerate(cases):
    try:
        out.append(jsonpatch.apply_patch(case["doc"], case["patch"], in_place=False))
    except Exception as e:  # report which case failed, and why
        print(f"case {i}: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
json.dump(out, sys.stdout)
