#!/usr/bin/env python3
"""Writes N Deployments shaped like a small real app to stdout.

Each has two containers (an app and a metrics exporter), probes, env, ports and resources,
spread over ten namespaces, with the Namespace objects first (`linkerd.io/inject: enabled`).
Deterministic: the same N gives the same bytes.

    python3 benches/offline/gen_deployments.py 1000 > /tmp/deploy-1k.yaml
"""

import sys

NAMESPACES = 10

NAMESPACE = """\
apiVersion: v1
kind: Namespace
metadata:
  name: team-{ns}
  annotations:
    linkerd.io/inject: enabled
---
"""

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: svc-{i}
  namespace: team-{ns}
  labels:
    app.kubernetes.io/name: svc-{i}
    app.kubernetes.io/part-of: shop
spec:
  replicas: 2
  selector:
    matchLabels:
      app.kubernetes.io/name: svc-{i}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: svc-{i}
        app.kubernetes.io/part-of: shop
      annotations:
        prometheus.io/scrape: "true"
    spec:
      serviceAccountName: svc-{i}
      containers:
      - name: app
        image: ghcr.io/example/svc-{i}:1.{minor}.0
        ports:
        - name: http
          containerPort: 8080
        - name: grpc
          containerPort: 9090
        env:
        - name: LOG_LEVEL
          value: info
        - name: ORDERS_URL
          value: http://orders.team-{ns}.svc.cluster.local:8080
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        readinessProbe:
          httpGet:
            path: /ready
            port: 8080
          periodSeconds: 5
        livenessProbe:
          httpGet:
            path: /live
            port: 8080
          initialDelaySeconds: 10
        resources:
          requests:
            cpu: 100m
            memory: 128Mi
          limits:
            memory: 256Mi
      - name: metrics
        image: ghcr.io/example/exporter:0.9.0
        args: ["--listen=:9100", "--target=http://localhost:8080/metrics"]
        ports:
        - name: metrics
          containerPort: 9100
        resources:
          requests:
            cpu: 10m
            memory: 32Mi
---
"""


def main() -> None:
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.exit("usage: gen_deployments.py N")
    n = int(sys.argv[1])
    out = sys.stdout
    for ns in range(NAMESPACES):
        out.write(NAMESPACE.format(ns=ns))
    for i in range(n):
        out.write(DEPLOYMENT.format(i=i, ns=i % NAMESPACES, minor=i % 7))


if __name__ == "__main__":
    main()
