"""The CLI as a Helm post-renderer (README, "Helm post-renderer").

A chart (tests/fixtures/helm/shop) is rendered by the real Helm engine (helm-python-sdk) and
its stream piped through the command that packaging/helm-plugin/plugin.yaml declares, with the
arguments `--post-renderer-args` would add: what Helm 4 runs for the plugin, and Helm 3 for
`--post-renderer proxy-injector --post-renderer-args ...`. Not covered: Helm itself starting
the post-renderer (the SDK renders, it does not install, and has no post-render hook).
"""

import pathlib
import subprocess

import helm_python as helm
import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
BINARY = ROOT / "target" / "release" / "proxy-injector"
PLUGIN = ROOT / "packaging" / "helm-plugin" / "plugin.yaml"
SHOP = ROOT / "tests" / "fixtures" / "helm" / "shop"
VALUES = ROOT / "tests" / "fixtures" / "values.yaml"


def rendered():
    """The chart's manifests as Helm hands them to a post-renderer: one stream, each template
    under its `# Source:` comment."""
    out = helm.Chart.load(str(SHOP)).render({}, name="shop", namespace="shop", is_install=True)
    return "".join(f"---\n# Source: {p}\n{out[p].strip()}\n" for p in sorted(out) if out[p].strip())


def plugin_argv(extra):
    plugin = yaml.safe_load(PLUGIN.read_text())
    command = plugin["runtimeConfig"]["platformCommand"][0]
    assert command["command"] == "proxy-injector"
    return [str(BINARY), *command["args"], *extra]


def run(argv):
    assert BINARY.exists(), f"build the binary first: cargo build --release ({BINARY})"
    done = subprocess.run(argv, input=rendered(), capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def workloads(stream):
    docs = [d for d in yaml.safe_load_all(stream) if d]
    templates = {}
    for d in docs:
        if d["kind"] == "Deployment":
            templates["web"] = d["spec"]["template"]
        if d["kind"] == "CronJob":
            templates["report"] = d["spec"]["jobTemplate"]["spec"]["template"]
    return docs, templates


def test_the_plugin_is_a_helm_4_postrenderer():
    plugin = yaml.safe_load(PLUGIN.read_text())
    assert plugin["apiVersion"] == "v1"
    assert plugin["type"] == "postrenderer/v1"
    assert plugin["runtime"] == "subprocess"
    assert plugin["name"] == "proxy-injector"


def test_annotate_only_keeps_the_stream_and_marks_each_workload():
    source = rendered()
    out = run(plugin_argv([]))
    docs, templates = workloads(out)
    assert len(docs) == 3
    for name, t in templates.items():
        assert t["metadata"]["annotations"]["linkerd.io/inject"] == "enabled", name
        assert all(c["name"] != "linkerd-proxy" for c in t["spec"]["containers"]), name
    # The Service is written back byte for byte, the Source comments kept.
    service = source[source.index("# Source: shop/templates/service.yaml"):].split("---")[0]
    assert service in out
    assert out.count("# Source:") == source.count("# Source:")


@pytest.mark.parametrize("helm_version", [3, 4])
def test_manual_injects_the_proxy(helm_version):
    if helm_version == 4:
        # `--post-renderer proxy-injector --post-renderer-args=--manual ...`: appended.
        argv = plugin_argv(["--manual", f"--values={VALUES}"])
    else:
        # Helm 3: `--post-renderer proxy-injector --post-renderer-args=inject ...`.
        argv = [str(BINARY), "inject", "--manual", f"--values={VALUES}", "-"]
    _, templates = workloads(run(argv))
    assert set(templates) == {"web", "report"}
    for name, t in templates.items():
        names = [c["name"] for c in t["spec"].get("initContainers", [])]
        assert "linkerd-proxy" in names and "linkerd-init" in names, (name, names)


def test_both_forms_write_the_same_stream():
    helm4 = run(plugin_argv(["--manual", f"--values={VALUES}"]))
    helm3 = run([str(BINARY), "inject", "--manual", f"--values={VALUES}", "-"])
    assert helm4 == helm3
