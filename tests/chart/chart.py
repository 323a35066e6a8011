"""Rendering the chart with the real Helm engine (helm-python-sdk: Helm v4 as a library)."""

import pathlib

import helm_python as helm
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "proxy-injector"
MANIFEST = ROOT / "manifests" / "proxy-injector.yaml"
RELEASE = "proxy-injector"
NAMESPACE = "linkerd"

# The manifest carries no key: its serving certificate comes from cert-manager, so that no
# two clusters installed from this file share one.
MANIFEST_VALUES = {"tls": {"mode": "certManager"}}

HEADER = """\
# proxy-injector, the Helm chart charts/proxy-injector rendered with tls.mode=certManager
# (release "proxy-injector", namespace "linkerd"): cert-manager issues the serving
# certificate from a self-signed Issuer, and its cainjector fills in the caBundle. This file
# holds no private key. Without cert-manager, render the chart instead, which generates a
# key for your cluster alone:
#   helm template proxy-injector charts/proxy-injector -n linkerd | kubectl apply -f -
# Regenerate this file with:
#   python3 tests/chart/render_manifest.py
"""


def render_files(values=None, name=RELEASE, namespace=NAMESPACE):
    chart = helm.Chart.load(str(CHART))
    return chart.render(values or {}, name=name, namespace=namespace, is_install=True)


def render(values=None, **kw):
    """The rendered objects, in template order."""
    out = render_files(values, **kw)
    docs = []
    for path in sorted(out):
        for doc in yaml.safe_load_all(out[path]):
            if doc:
                docs.append(doc)
    return docs


def manifest_text(values=None):
    out = render_files(MANIFEST_VALUES if values is None else values)
    parts = [HEADER]
    for path in sorted(out):
        body = out[path].strip()
        if body:
            parts.append(f"---\n# Source: {path}\n{body}\n")
    return "".join(parts)


def values_file(name):
    return yaml.safe_load((CHART / name).read_text())
