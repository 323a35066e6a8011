"""Rendering the chart with the real Helm engine (helm-python-sdk: Helm v4 as a library)."""

import pathlib

import helm_python as helm
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "proxy-injector"
MANIFEST = ROOT / "manifests" / "proxy-injector.yaml"
RELEASE = "proxy-injector"
NAMESPACE = "linkerd"

HEADER = """\
# proxy-injector, the Helm chart charts/proxy-injector rendered with its default values
# (release "proxy-injector", namespace "linkerd"). Regenerate with:
#   python3 tests/chart/render_manifest.py
# The TLS material below is generated at render time: regenerate this file rather than
# applying it twice, or install with Helm.
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
    out = render_files(values)
    parts = [HEADER]
    for path in sorted(out):
        body = out[path].strip()
        if body:
            parts.append(f"---\n# Source: {path}\n{body}\n")
    return "".join(parts)


def values_file(name):
    return yaml.safe_load((CHART / name).read_text())
