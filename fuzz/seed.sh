#!/usr/bin/env bash
# Seeds the fuzz corpora from the test fixtures:
#   corpus/manifest:  the fixture inputs and every CLI case's expected stdout;
#   corpus/admission: an AdmissionReview for each Pod or pod template found in them;
#   corpus/splice:    each fixture input behind the three bytes that choose the change;
#   corpus/splice_patch: each fixture input behind the four bytes that choose the patch.
# Then: cargo +nightly fuzz run manifest -- -max_total_time=600
#   (and `admission`, `splice`, `splice_patch`)
set -euo pipefail
cd "$(dirname "$0")"
fixtures=../tests/fixtures
mkdir -p corpus/manifest corpus/admission corpus/splice corpus/splice_patch
cp "$fixtures"/inputs/*.yaml corpus/manifest/
for golden in "$fixtures"/cli/*/stdout.golden; do
  [ -s "$golden" ] && cp "$golden" "corpus/manifest/$(basename "$(dirname "$golden")").golden"
done
cp "$fixtures"/fuzz/manifest/* corpus/manifest/ 2>/dev/null || true
python3 - "$fixtures" <<'PY'
import json, pathlib, sys, yaml
fixtures = pathlib.Path(sys.argv[1])
n = 0
for f in sorted(fixtures.glob("inputs/*.yaml")):
    try:
        docs = list(yaml.safe_load_all(f.read_text()))
    except yaml.YAMLError:
        continue
    for doc in docs:
        if not isinstance(doc, dict):
            continue
        if doc.get("kind") == "Pod":
            pod = doc
        else:
            tpl = (doc.get("spec") or {}).get("template") or ((doc.get("spec") or {}).get("jobTemplate") or {}).get("spec", {}).get("template")
            if not isinstance(tpl, dict):
                continue
            pod = {"apiVersion": "v1", "kind": "Pod", **tpl}
        review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                  "request": {"uid": f"seed-{n}", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                              "resource": {"group": "", "version": "v1", "resource": "pods"},
                              "namespace": "shop", "operation": "CREATE", "userInfo": {},
                              "object": pod}}
        pathlib.Path(f"corpus/admission/seed-{n}.json").write_text(json.dumps(review))
        n += 1
print(f"{n} admission seeds")
PY
cp "$fixtures"/fuzz/admission/* corpus/admission/ 2>/dev/null || true
i=0
for f in "$fixtures"/inputs/*.yaml; do
  for choice in '\x00\x02\x00' '\x01\x05\x01' '\x05\x03\x02'; do
    { printf "$choice"; cat "$f"; } > "corpus/splice/seed-$i"
    i=$((i + 1))
  done
done
cp "$fixtures"/fuzz/splice/* corpus/splice/ 2>/dev/null || true
i=0
for f in "$fixtures"/inputs/*.yaml; do
  for choice in '\x00\x02\x00\x00' '\x01\x05\x01\x03' '\x02\x03\x02\x05' '\x03\x01\x04\x02'; do
    { printf "$choice"; cat "$f"; } > "corpus/splice_patch/seed-$i"
    i=$((i + 1))
  done
done
cp "$fixtures"/fuzz/splice_patch/* corpus/splice_patch/ 2>/dev/null || true
