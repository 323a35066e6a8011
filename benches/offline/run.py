#!/usr/bin/env python3
"""Offline throughput: `inject --manual` vs `kubectl kustomize` vs our reader+writer floor.

For each N it generates N Deployments (gen_deployments.py), then times, on the same stream,
with peak RSS from `/usr/bin/time -f %M`:

1. `proxy-injector inject --manual --values manifests/examples/values.yaml`;
2. `kubectl kustomize` with a strategic-merge patch that adds the very proxy, init container,
   volumes and annotations our injection adds (taken from our own output for one
   Deployment) to every Deployment, as a native sidecar: the peer a user would reach for;
3. the floor: `examples/yaml_floor` — our manifest reader and writer, injecting nothing;
4. for scale, the same reader and writer on inject's *output* (the bytes inject must write:
   the proxy makes each Deployment about 7× longer).

Prints a Markdown table (median of --repeat runs; kustomize is stopped at --cap seconds and
shown as "> cap"). Timings are for this machine only; compare the ratios.

    cargo build --release --bin proxy-injector --example yaml_floor
    python3 benches/offline/run.py                  # N = 1000 10000 100000
    python3 benches/offline/run.py --sizes 1000 --repeat 5
"""

import argparse
import os
import pathlib
import signal
import statistics
import subprocess
import sys
import tempfile

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = ROOT / "target/release/proxy-injector"
FLOOR = ROOT / "target/release/examples/yaml_floor"
VALUES = ROOT / "manifests/examples/values.yaml"
GEN = ROOT / "benches/offline/gen_deployments.py"


def timed(cmd, cap=None, stdout=subprocess.DEVNULL):
    """Runs cmd under /usr/bin/time; returns (seconds, peak RSS KiB) or None past the cap."""
    # Its own process group, so that a run past the cap is stopped with its children
    # (killing /usr/bin/time alone would leave kubectl running and skew every later run).
    p = subprocess.Popen(
        ["/usr/bin/time", "-f", "TIME %e %M", *cmd],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _, err = p.communicate(timeout=cap)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        return None
    line = [l for l in err.splitlines() if l.startswith("TIME ")]
    if p.returncode != 0 or not line:
        sys.exit(f"{cmd[0]} failed ({p.returncode}):\n{err[-2000:]}")
    _, secs, kib = line[-1].split()
    return float(secs), int(kib)


def sidecar_patch(work):
    """A strategic-merge patch adding exactly what our injection adds to one Deployment."""
    one = work / "one.yaml"
    one.write_text(subprocess.run(
        [sys.executable, GEN, "1"], check=True, capture_output=True, text=True).stdout)
    out = subprocess.run(
        [BIN, "inject", "--manual", "--values", VALUES, one],
        check=True, capture_output=True, text=True).stdout
    dep = next(d for d in yaml.safe_load_all(out) if d and d["kind"] == "Deployment")
    tpl = dep["spec"]["template"]
    ann = {k: v for k, v in tpl["metadata"]["annotations"].items()
           if k.startswith("linkerd.io/")}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "any"},
        "spec": {"template": {
            "metadata": {"annotations": ann},
            "spec": {"initContainers": tpl["spec"]["initContainers"],
                     "volumes": tpl["spec"]["volumes"]}}},
    }


def median(runs):
    if any(r is None for r in runs):
        return None
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--repeat", type=int, default=3, help="runs per cell below 100k (100k: 1)")
    ap.add_argument("--cap", type=float, default=120.0, help="seconds before kustomize is stopped")
    args = ap.parse_args()
    for b in (BIN, FLOOR):
        if not b.exists():
            sys.exit(f"{b} missing: cargo build --release --bin proxy-injector --example yaml_floor")

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        kz = work / "kz"
        kz.mkdir()
        (kz / "proxy-patch.yaml").write_text(yaml.safe_dump(sidecar_patch(work), sort_keys=False))
        (kz / "kustomization.yaml").write_text(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            "resources:\n- deployments.yaml\n"
            "patches:\n- path: proxy-patch.yaml\n  target:\n    kind: Deployment\n")
        kz_over_cap = False
        for n in args.sizes:
            stream = kz / "deployments.yaml"
            with open(stream, "w") as f:
                subprocess.run([sys.executable, GEN, str(n)], check=True, stdout=f)
            size_mb = stream.stat().st_size / 1e6
            reps = args.repeat if n < 100000 else 1
            inj = median([timed([BIN, "inject", "--manual", "--values", VALUES, stream])
                          for _ in range(reps)])
            flo = median([timed([FLOOR, stream]) for _ in range(reps)])
            injected = work / "injected.yaml"
            with open(injected, "w") as f:
                timed([BIN, "inject", "--manual", "--values", VALUES, stream], stdout=f)
            out_mb = injected.stat().st_size / 1e6
            flo_out = median([timed([FLOOR, injected]) for _ in range(reps)])
            injected.unlink()
            if kz_over_cap:
                kus = None  # a smaller N already exceeded the cap
            else:
                kus = median([timed(["kubectl", "kustomize", kz], cap=args.cap)
                              for _ in range(1 if n >= 10000 else reps)])
                kz_over_cap = kus is None
            rows.append((n, size_mb, out_mb, inj, kus, flo, flo_out))
            print(f"done N={n}", file=sys.stderr)

    def cell(r):
        return f"> {args.cap:.0f} s (cap)" if r is None else f"{r[0]:.2f} s / {r[1] / 1024:.0f} MB"

    print("| N | input → output | inject --manual | kubectl kustomize | floor: read+write input "
          "| read+write output | kustomize ÷ inject | inject ÷ floor | inject ÷ read+write output "
          "| inject µs/Deployment |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n, mb, out_mb, inj, kus, flo, flo_out in rows:
        vs_kz = f"> {args.cap / inj[0]:.0f}×" if kus is None else f"{kus[0] / inj[0]:.1f}×"
        print(f"| {n:,} | {mb:.1f} → {out_mb:.1f} MB | {cell(inj)} | {cell(kus)} | {cell(flo)} "
              f"| {cell(flo_out)} | {vs_kz} | {inj[0] / flo[0]:.2f}× | {inj[0] / flo_out[0]:.2f}× "
              f"| {inj[0] / n * 1e6:.0f} |")
    print(f"\n{os.cpu_count()} CPUs; time = median wall clock of the runs, RSS = peak.")


if __name__ == "__main__":
    main()
