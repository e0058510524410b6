#!/usr/bin/env python3
"""Helpers for scripts/k8s-check.sh (run with the .venv-k8s interpreter, which has PyYAML).

  manifests.py split IN.yaml OUTDIR GROUP
      Writes the built-in kinds of a multi-document YAML file to OUTDIR/builtin.yaml and
      each custom resource of API group GROUP to OUTDIR/cr-<n>-<kind>.json. Fails on
      documents of any other non-built-in group (they would be validated by nothing).

  manifests.py schema CRD.yaml OUT.json
      Turns a CRD's openAPIV3Schema into a JSON Schema for check-jsonschema: `nullable`
      becomes a null type, apiVersion and kind must match the CRD, and objects reject
      unknown fields (as `kubectl --validate=strict` does) unless the schema preserves them.
"""
import json
import os
import sys

import yaml

# API groups kubernetes-validate has schemas for (the core API has no group).
BUILTIN_GROUPS = {
    "", "admissionregistration.k8s.io", "apiextensions.k8s.io", "apps", "autoscaling",
    "batch", "certificates.k8s.io", "coordination.k8s.io", "discovery.k8s.io",
    "events.k8s.io", "networking.k8s.io", "node.k8s.io", "policy",
    "rbac.authorization.k8s.io", "scheduling.k8s.io", "storage.k8s.io",
}


def group_of(api_version):
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def split(src, outdir, group):
    with open(src) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    os.makedirs(outdir, exist_ok=True)
    builtin, customs = [], 0
    for d in docs:
        g = group_of(d.get("apiVersion", ""))
        if g == group:
            customs += 1
            name = f"cr-{customs}-{d.get('kind', 'unknown').lower()}.json"
            with open(os.path.join(outdir, name), "w") as out:
                json.dump(d, out, indent=1)
        elif g in BUILTIN_GROUPS:
            builtin.append(d)
        else:
            sys.exit(f"{src}: {d.get('kind')} in group {g!r} cannot be validated")
    with open(os.path.join(outdir, "builtin.yaml"), "w") as out:
        yaml.safe_dump_all(builtin, out, sort_keys=False)
    print(f"{src}: {len(builtin)} built-in objects, {customs} {group} objects")


def convert(node):
    if isinstance(node, list):
        return [convert(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: convert(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    nullable = out.pop("nullable", False)
    if nullable and "type" in out:
        out["type"] = [out["type"], "null"]
    if node.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string"] + (["null"] if nullable else [])
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def schema(crd_path, out_path):
    with open(crd_path) as f:
        crd = yaml.safe_load(f)
    spec = crd["spec"]
    if len(spec["versions"]) != 1:
        sys.exit(f"{crd_path}: expected one version")
    version = spec["versions"][0]
    s = convert(version["schema"]["openAPIV3Schema"])
    props = s.setdefault("properties", {})
    props["apiVersion"] = {"const": f"{spec['group']}/{version['name']}"}
    props["kind"] = {"const": spec["names"]["kind"]}
    props["metadata"] = {
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"}},
    }
    s["required"] = sorted(set(s.get("required", [])) | {"apiVersion", "kind", "metadata", "spec"})
    s["$schema"] = "http://json-schema.org/draft-07/schema#"
    with open(out_path, "w") as out:
        json.dump(s, out, indent=1)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "split":
        split(sys.argv[2], sys.argv[3], sys.argv[4])
    elif len(sys.argv) == 4 and sys.argv[1] == "schema":
        schema(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
