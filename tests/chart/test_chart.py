"""The Helm chart, rendered and linted by the real Helm engine (helm-python-sdk, Helm v4 as a
library) and validated with strict Kubernetes schemas (kubernetes-validate)."""

import base64
import copy

import helm_python as helm
import kubernetes_validate
import pytest
from cryptography import x509

from chart import CHART, MANIFEST, NAMESPACE, RELEASE, manifest_text, render, values_file

# A placeholder CA PEM for the external-Secret mode: the chart only passes it through.
EXTERNAL_CA = """-----BEGIN CERTIFICATE-----
MIIBfzCCASWgAwIBAgIUJ0m6x0mV5m3m1q9b8cYt0cQ2yY4wCgYIKoZIzj0EAwIw
FTETMBEGA1UEAwwKZXh0ZXJuYWwtY2EwHhcNMjYxMTI5MDAwMDAwWhcNMzYxMTI3
MDAwMDAwWjAVMRMwEQYDVQQDDApleHRlcm5hbC1jYTBZMBMGByqGSM49AgEGCCqG
SM49AwEHA0IABGu8H3v2mJ8gq0yq1o8tY5xk5f2l0WJ9o7w9cG1H5m6k8b7kq9rE
-----END CERTIFICATE-----
"""

MODES = {
    "default": {},
    "cert-manager": {"tls": {"mode": "certManager"}},
    "cert-manager-issuer": {"tls": {"mode": "certManager", "certManager": {"issuerRef": {"name": "cluster-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}}}},
    "external": {"tls": {"mode": "external", "secretName": "my-injector-tls", "caBundle": EXTERNAL_CA}},
    "ha": values_file("values-ha.yaml"),
    "healing": {"uninjectedPods": {"heal": True}},
}

# cert-manager's CRDs have no schema in kubernetes-validate: their objects are checked by
# the assertions below instead.
CUSTOM = {"cert-manager.io/v1"}


def by_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def one(docs, kind):
    found = by_kind(docs, kind)
    assert len(found) == 1, f"{kind}: {len(found)}"
    return found[0]


@pytest.mark.parametrize("mode", MODES)
def test_lint_reports_no_errors(mode):
    report = helm.lint(str(CHART), MODES[mode], namespace=NAMESPACE, kube_version="v1.30.0")
    assert report["errors"] == []
    errors = [m for m in report["messages"] if m["severity"] >= 3]
    assert errors == [], errors


@pytest.mark.parametrize("version", ["1.30.0", "1.37.0"])
@pytest.mark.parametrize("mode", MODES)
def test_render_passes_strict_schemas(mode, version):
    docs = render(MODES[mode])
    checked = 0
    for doc in docs:
        if doc["apiVersion"] in CUSTOM:
            continue
        kubernetes_validate.validate(doc, version, strict=True)
        checked += 1
    assert checked >= 6


def test_webhook_configuration():
    docs = render()
    mwc = one(docs, "MutatingWebhookConfiguration")
    (hook,) = mwc["webhooks"]
    svc = one(docs, "Service")
    assert hook["clientConfig"]["service"] == {"name": svc["metadata"]["name"], "namespace": NAMESPACE, "path": "/", "port": 443}
    assert svc["spec"]["ports"] == [{"name": "webhook", "port": 443, "targetPort": "webhook", "protocol": "TCP"}]
    assert hook["failurePolicy"] == "Ignore"
    assert hook["sideEffects"] == "None"
    assert hook["timeoutSeconds"] == 10
    assert hook["admissionReviewVersions"] == ["v1", "v1beta1"]
    assert hook["rules"] == [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods", "services"], "scope": "Namespaced"}]
    ns_sel = hook["namespaceSelector"]["matchExpressions"]
    assert {"key": "config.linkerd.io/admission-webhooks", "operator": "NotIn", "values": ["disabled"]} in ns_sel
    assert {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system", "cert-manager"]} in ns_sel
    obj_sel = hook["objectSelector"]["matchExpressions"]
    assert {"key": "linkerd.io/control-plane-component", "operator": "DoesNotExist"} in obj_sel
    # The webhook's own pods carry that label, so it never reviews itself.
    dep = one(docs, "Deployment")
    assert "linkerd.io/control-plane-component" in dep["spec"]["template"]["metadata"]["labels"]
    # Settings flow through.
    hook2 = one(render({"replicas": 2, "webhook": {"failurePolicy": "Fail", "timeoutSeconds": 5, "reinvocationPolicy": "IfNeeded"}}), "MutatingWebhookConfiguration")["webhooks"][0]
    assert (hook2["failurePolicy"], hook2["timeoutSeconds"], hook2["reinvocationPolicy"]) == ("Fail", 5, "IfNeeded")


def test_ca_bundle_verifies_the_generated_serving_certificate():
    docs = render()
    hook = one(docs, "MutatingWebhookConfiguration")["webhooks"][0]
    ca = x509.load_pem_x509_certificate(base64.b64decode(hook["clientConfig"]["caBundle"]))
    secret = one(docs, "Secret")
    assert secret["type"] == "kubernetes.io/tls"
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    cert.verify_directly_issued_by(ca)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert f"{RELEASE}.{NAMESPACE}.svc" in sans
    dep = one(docs, "Deployment")
    assert dep["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"] == secret["metadata"]["name"]


def test_cert_manager_mode():
    docs = render(MODES["cert-manager"])
    cert = one(docs, "Certificate")
    assert f"{RELEASE}.{NAMESPACE}.svc" in cert["spec"]["dnsNames"]
    issuer = one(docs, "Issuer")
    assert cert["spec"]["issuerRef"]["name"] == issuer["metadata"]["name"]
    mwc = one(docs, "MutatingWebhookConfiguration")
    assert mwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == f"{NAMESPACE}/{cert['metadata']['name']}"
    assert "caBundle" not in mwc["webhooks"][0]["clientConfig"]
    assert by_kind(docs, "Secret") == []
    docs = render(MODES["cert-manager-issuer"])
    assert by_kind(docs, "Issuer") == []
    assert one(docs, "Certificate")["spec"]["issuerRef"] == {"name": "cluster-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}


def test_external_mode():
    docs = render(MODES["external"])
    assert by_kind(docs, "Secret") == []
    hook = one(docs, "MutatingWebhookConfiguration")["webhooks"][0]
    assert base64.b64decode(hook["clientConfig"]["caBundle"]).decode() == EXTERNAL_CA
    vols = one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert vols[0]["secret"]["secretName"] == "my-injector-tls"


@pytest.mark.parametrize("values,message", [
    ({"tls": {"mode": "external", "caBundle": EXTERNAL_CA}}, "tls.mode=external needs tls.secretName"),
    ({"tls": {"mode": "external", "secretName": "s"}}, "tls.mode=external needs tls.caBundle"),
    ({"tls": {"caBundle": EXTERNAL_CA}}, "tls.caBundle is only used with tls.mode=external"),
    ({"tls": {"certManager": {"issuerRef": {"name": "x"}}}}, "tls.certManager.issuerRef is only used with tls.mode=certManager"),
])
def test_tls_values_are_checked_against_each_other(values, message):
    with pytest.raises(helm.HelmError) as e:
        render(values)
    assert message in str(e.value)


@pytest.mark.parametrize("values", [
    {"replicas": "three"},
    {"replicas": 0},
    {"webhook": {"failurePolicy": "Sometimes"}},
    {"webhook": {"timeoutSeconds": 31}},
    {"tls": {"mode": "selfSigned"}},
    {"logFormat": "xml"},
    {"uninjectedPods": {"gracePeriod": "soon"}},
    {"uninjectedPods": {"confirmationsPerSecond": 0}},
    {"unknownKey": True},
])
def test_schema_rejects_bad_values(values):
    chart = helm.Chart.load(str(CHART))
    with pytest.raises(helm.HelmError):
        chart.validate_schema(values)
    with pytest.raises(helm.HelmError):
        render(values)


def test_rbac_is_least_privilege():
    role = one(render(), "ClusterRole")
    resources = {(g, r): set(rule["verbs"]) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert resources == {
        ("", "namespaces"): {"get", "list", "watch"},
        ("apps", "replicasets"): {"get", "list", "watch"},
        ("batch", "jobs"): {"get", "list", "watch"},
        ("", "pods"): {"get", "list", "watch"},
        ("events.k8s.io", "events"): {"create", "patch"},
    }
    assert not any("secrets" in rule["resources"] or "*" in rule["resources"] for rule in role["rules"])
    binding = one(render(), "ClusterRoleBinding")
    sa = one(render(), "ServiceAccount")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": NAMESPACE}]


def test_pod_security():
    pod = one(render(), "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (c,) = pod["containers"]
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/live", "port": "admin"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "admin"}
    assert c["resources"]["requests"] and c["resources"]["limits"]


def test_flags_match_mounts_and_ports():
    docs = render()
    dep = one(docs, "Deployment")
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    args = dict(a[2:].split("=", 1) for a in c["args"][1:])
    assert c["args"][0] == "webhook"
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    vols = {v["name"]: v for v in pod["volumes"]}
    assert args["tls-cert"] == f"{mounts['tls']}/tls.crt" and args["tls-key"] == f"{mounts['tls']}/tls.key"
    assert vols["tls"]["secret"]["secretName"] == one(docs, "Secret")["metadata"]["name"]
    assert args["config-dir"] == mounts["config"]
    sources = vols["config"]["projected"]["sources"]
    assert {"name": "linkerd-config", "items": [{"key": "values", "path": "values"}]} in [s["configMap"] for s in sources]
    assert {"name": "linkerd-identity-trust-roots", "items": [{"key": "ca-bundle.crt", "path": "ca-bundle.crt"}]} in [s["configMap"] for s in sources]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert args["addr"] == f"0.0.0.0:{ports['webhook']}"
    assert args["admin-addr"] == f"0.0.0.0:{ports['admin']}"
    assert args["linkerd-namespace"] == NAMESPACE
    assert "checksum/tls" in dep["spec"]["template"]["metadata"]["annotations"]
    assert dep["spec"]["template"]["metadata"]["annotations"]["linkerd.io/inject"] == "disabled"


def test_checksum_follows_the_tls_secret():
    a = one(render(MODES["external"]), "Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/tls"]
    other = copy.deepcopy(MODES["external"])
    other["tls"]["secretName"] = "rotated-tls"
    b = one(render(other), "Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/tls"]
    assert a != b
    # A generated certificate is new at every render, so every upgrade rolls the pods.
    g1 = one(render(), "Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/tls"]
    g2 = one(render(), "Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/tls"]
    assert g1 != g2


def test_high_availability():
    docs = render(MODES["ha"])
    dep = one(docs, "Deployment")
    assert dep["spec"]["replicas"] == 3
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
    anti = dep["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    single = render()
    assert by_kind(single, "PodDisruptionBudget") == []
    assert "affinity" not in one(single, "Deployment")["spec"]["template"]["spec"]


def test_manifest_equals_a_fresh_render():
    import yaml
    assert MANIFEST.exists(), "run python3 tests/chart/render_manifest.py"
    assert MANIFEST.read_text() == manifest_text(), \
        "manifests/proxy-injector.yaml is stale: run python3 tests/chart/render_manifest.py"
    kinds = [d["kind"] for d in yaml.safe_load_all(MANIFEST.read_text()) if d]
    assert "Certificate" in kinds and "Secret" not in kinds


# "PRIVATE KEY" as it appears in base64 text at each of the three alignments.
def _base64_needles(word=b"PRIVATE KEY"):
    needles = []
    for pad in range(3):
        encoded = base64.b64encode(b"\0" * pad + word).decode()
        # Drop the characters that depend on the padding bytes or on what follows.
        start = (pad * 4 + 2) // 3
        needles.append(encoded[start:len(encoded) - 4])
    return needles


def test_no_private_key_under_manifests():
    root = MANIFEST.parent
    files = [p for p in root.rglob("*") if p.is_file()]
    assert MANIFEST in files
    needles = _base64_needles()
    # The needles find a key when one is there.
    probe = base64.b64encode(b"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n").decode()
    assert any(n in probe for n in needles)
    for path in files:
        text = path.read_text(errors="replace")
        assert "PRIVATE KEY" not in text, f"{path}: a PEM private key"
        for n in needles:
            assert n not in text, f"{path}: a base64-encoded private key"


# --- Failure policy, TLS across upgrades, grace period, NetworkPolicy ---------------------

def test_fail_mode_requires_replicas_and_keeps_the_exclusions():
    with pytest.raises(helm.HelmError) as e:
        render({"webhook": {"failurePolicy": "Fail"}})
    assert "webhook.failurePolicy=Fail needs replicas >= 2" in str(e.value)
    # Even with selectors that exclude nothing, the namespaces and objects the cluster needs
    # to recover are never reviewed.
    nothing = {"matchExpressions": []}
    docs = render({"replicas": 2, "webhook": {"failurePolicy": "Fail", "namespaceSelector": nothing, "objectSelector": nothing}}, namespace="mesh")
    hook = one(docs, "MutatingWebhookConfiguration")["webhooks"][0]
    assert hook["failurePolicy"] == "Fail"
    assert hook["namespaceSelector"] == {"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system", "mesh", "cert-manager"]}]}
    assert hook["objectSelector"] == {"matchExpressions": [
        {"key": "linkerd.io/control-plane-component", "operator": "DoesNotExist"}]}
    dep = one(docs, "Deployment")
    assert "linkerd.io/control-plane-component" in dep["spec"]["template"]["metadata"]["labels"]
    anti = dep["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    (term,) = anti["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
    assert one(docs, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1


@pytest.mark.parametrize("version", ["1.30.0", "1.37.0"])
def test_fail_closed_values_file(version):
    values = values_file("values-fail-closed.yaml")
    report = helm.lint(str(CHART), values, namespace=NAMESPACE, kube_version="v1.30.0")
    assert report["errors"] == []
    docs = render(values)
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)
    hook = one(docs, "MutatingWebhookConfiguration")["webhooks"][0]
    assert hook["failurePolicy"] == "Fail"
    c = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert "--on-error=deny" in c["args"]
    assert {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system", "linkerd", "cert-manager"]} in hook["namespaceSelector"]["matchExpressions"]


@pytest.mark.parametrize("grace,delay,seconds", [
    ("10s", "5s", 20), ("2m", "0s", 125), ("500ms", "500ms", 7), ("1500ms", "1m", 67)])
def test_termination_grace_period_covers_the_durations(grace, delay, seconds):
    dep = one(render({"shutdownGracePeriod": grace, "shutdownDelay": delay}), "Deployment")
    assert dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == seconds


def test_network_policy():
    assert by_kind(render(), "NetworkPolicy") == []
    monitoring = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    docs = render({"networkPolicy": {"enabled": True, "adminFrom": [monitoring]}})
    policy = one(docs, "NetworkPolicy")
    for version in ("1.30.0", "1.37.0"):
        kubernetes_validate.validate(policy, version, strict=True)
    dep = one(docs, "Deployment")
    assert policy["spec"]["podSelector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
    ports = {p["name"] for p in dep["spec"]["template"]["spec"]["containers"][0]["ports"]}
    webhook_rule, admin_rule = policy["spec"]["ingress"]
    assert "from" not in webhook_rule, "the API server's addresses are not knowable"
    assert webhook_rule["ports"] == [{"port": "webhook", "protocol": "TCP"}]
    assert admin_rule == {"from": [monitoring], "ports": [{"port": "admin", "protocol": "TCP"}]}
    assert {"webhook", "admin"} <= ports
    # Without adminFrom the admin port is closed to other pods.
    closed = one(render({"networkPolicy": {"enabled": True}}), "NetworkPolicy")
    assert len(closed["spec"]["ingress"]) == 1


def test_limits_and_on_error_flow_into_the_flags():
    c = one(render({"onError": "deny", "limits": {"maxRequestBytes": "3Mi", "maxInflightBytes": "96Mi", "maxConnections": 64}}), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert {"--on-error=deny", "--max-request-bytes=3Mi", "--max-inflight-bytes=96Mi", "--max-connections=64"} <= set(c["args"])


def test_uninjected_pod_detection_flows_into_the_flags_and_rbac():
    import json
    c = one(render({"uninjectedPods": {"gracePeriod": "2m", "confirmationsPerSecond": 2}}), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    args = dict(a[2:].split("=", 1) for a in c["args"][1:])
    assert args["detect-uninjected"] == "true"
    assert args["uninjected-grace-period"] == "2m" and args["uninjected-confirmations-per-second"] == "2"
    # The selectors are the MutatingWebhookConfiguration's own: what it never sends is never reported.
    hook = one(render(), "MutatingWebhookConfiguration")["webhooks"][0]
    assert json.loads(args["uninjected-namespace-selector"]) == hook["namespaceSelector"]
    assert json.loads(args["uninjected-object-selector"]) == hook["objectSelector"]
    off = render({"uninjectedPods": {"detect": False}})
    c = one(off, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert "--detect-uninjected=false" in c["args"]
    assert not any(a.startswith("--uninjected-") for a in c["args"])
    rules = one(off, "ClusterRole")["rules"]
    assert not any("pods" in r["resources"] for r in rules)


def test_healing_adds_the_eviction_and_lease_rbac_only_when_on():
    assert not by_kind(render(), "Role")
    c = one(render(), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert not any(a.startswith("--heal") for a in c["args"])
    docs = render({"uninjectedPods": {"heal": True, "healInterval": "30s"}})
    c = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert {"--heal-uninjected", "--heal-interval=30s"} <= set(c["args"])
    assert {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}} in c["env"]
    rules = one(docs, "ClusterRole")["rules"]
    assert {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]} in rules
    role = one(docs, "Role")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": ["proxy-injector-healer"], "verbs": ["get", "patch"]},
    ]
    binding = one(docs, "RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    with pytest.raises(helm.HelmError) as e:
        render({"uninjectedPods": {"heal": True, "detect": False}})
    assert "uninjectedPods.heal needs uninjectedPods.detect" in str(e.value)


def _serving_pair(tmp_path, existing, now):
    """The chart's servingPair helper, run by the real Helm engine on a Secret of our making
    (`lookup` has no cluster to ask here)."""
    import shutil
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    (chart / "values.schema.json").unlink()
    (chart / "templates" / "probe.yaml").write_text(
        '{{- $pair := include "proxy-injector.servingPair" (dict "ctx" . "existing" .Values.probeExisting "now" .Values.probeNow) | fromYaml -}}\n'
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: probe}\ndata:\n"
        "{{- range $k, $v := $pair }}\n  {{ $k }}: {{ $v | quote }}\n{{- end }}\n")
    out = helm.Chart.load(str(chart)).render({"probeExisting": existing, "probeNow": now}, name=RELEASE, namespace=NAMESPACE, is_install=True)
    import yaml
    return yaml.safe_load(out["proxy-injector/templates/probe.yaml"])["data"]


def _generated_secret(not_after):
    secret = one(render(), "Secret")
    secret["metadata"]["annotations"]["proxy-injector/tls-not-after"] = str(not_after)
    return secret


def test_an_upgrade_reuses_a_secret_with_more_than_30_days_left(tmp_path):
    now = 1_900_000_000
    old = _generated_secret(now + 31 * 86400)
    pair = _serving_pair(tmp_path, old, now)
    assert (pair["crt"], pair["key"], pair["ca"]) == (old["data"]["tls.crt"], old["data"]["tls.key"], old["data"]["ca.crt"])
    assert pair["caBundle"] == old["data"]["ca.crt"]
    assert pair["notAfter"] == str(now + 31 * 86400)


def test_a_secret_near_expiry_is_replaced_and_its_ca_stays_trusted(tmp_path):
    now = 1_900_000_000
    old = _generated_secret(now + 29 * 86400)
    pair = _serving_pair(tmp_path, old, now)
    assert pair["crt"] != old["data"]["tls.crt"] and pair["ca"] != old["data"]["ca.crt"]
    bundle = x509.load_pem_x509_certificates(base64.b64decode(pair["caBundle"]))
    old_ca = x509.load_pem_x509_certificate(base64.b64decode(old["data"]["ca.crt"]))
    new_ca = x509.load_pem_x509_certificate(base64.b64decode(pair["ca"]))
    assert bundle == [new_ca, old_ca]
    # Both the pods still serving the old certificate and the new ones verify.
    x509.load_pem_x509_certificate(base64.b64decode(old["data"]["tls.crt"])).verify_directly_issued_by(old_ca)
    x509.load_pem_x509_certificate(base64.b64decode(pair["crt"])).verify_directly_issued_by(new_ca)
    assert pair["notAfter"] == str(now + 365 * 86400)


@pytest.mark.parametrize("existing", [
    {},
    {"data": {"tls.crt": "eA==", "tls.key": "eA=="}, "metadata": {"annotations": {"proxy-injector/tls-not-after": "9999999999"}}},
    {"data": {"tls.crt": "eA==", "tls.key": "eA==", "ca.crt": "eA=="}, "metadata": {}},
])
def test_a_missing_incomplete_or_unannotated_secret_is_replaced(tmp_path, existing):
    pair = _serving_pair(tmp_path, existing, 1_900_000_000)
    cert = x509.load_pem_x509_certificate(base64.b64decode(pair["crt"]))
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(base64.b64decode(pair["ca"])))
