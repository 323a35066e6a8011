#!/usr/bin/env python3
"""Renders the chart with its defaults and writes what the webhook needs to serve as the
chart would have it: the serving pair from the generated Secret, the MWC's caBundle, and
the service DNS name the apiserver would call. Used by tests/chart_e2e.rs.

Usage: render_tls.py OUTDIR
"""

import base64
import json
import pathlib
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
from chart import NAMESPACE, RELEASE, render  # noqa: E402

out = pathlib.Path(sys.argv[1])
docs = render()
secret = next(d for d in docs if d["kind"] == "Secret")
mwc = next(d for d in docs if d["kind"] == "MutatingWebhookConfiguration")
hook = mwc["webhooks"][0]
svc = hook["clientConfig"]["service"]
(out / "tls.crt").write_bytes(base64.b64decode(secret["data"]["tls.crt"]))
(out / "tls.key").write_bytes(base64.b64decode(secret["data"]["tls.key"]))
(out / "ca.pem").write_bytes(base64.b64decode(hook["clientConfig"]["caBundle"]))
(out / "service.json").write_text(json.dumps({
    "dns": f"{svc['name']}.{svc['namespace']}.svc",
    "path": svc["path"],
    "port": svc["port"],
}))
