#!/usr/bin/env python3
"""Writes manifests/proxy-injector.yaml: the chart rendered with its defaults."""

import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
from chart import MANIFEST, manifest_text  # noqa: E402

MANIFEST.parent.mkdir(parents=True, exist_ok=True)
MANIFEST.write_text(manifest_text())
print(f"wrote {MANIFEST}")
