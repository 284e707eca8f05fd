#!/bin/sh
# `make bench`: the edge size budgets, per architecture, read off the shipped
# artifacts: the static binary (<= 3 MiB) and its compressed image layer
# (<= 1.5 MiB, the blob size in the OCI archive). Prints each with its ratio
# to the budget; exits non-zero only when an artifact is missing.
# Usage: tools/budgets.sh IMAGE.tar STATIC_DIR
set -eu
image=$1 static=$2
python3 - "$image" "$static" <<'PY'
import json, os, sys, tarfile

image, static = sys.argv[1], sys.argv[2]
MiB = 1024 * 1024
BIN_BUDGET, LAYER_BUDGET = 3 * MiB, 1.5 * MiB
arch_of = {("amd64", None): "amd64", ("arm64", None): "arm64", ("arm", "v7"): "armhf"}

with tarfile.open(image) as t:
    def blob(desc):
        return t.extractfile("blobs/" + desc["digest"].replace(":", "/")).read()
    top = json.loads(t.extractfile("index.json").read())
    index = json.loads(blob(top["manifests"][0]))
    layers = {}
    for m in index["manifests"]:
        p = m["platform"]
        arch = arch_of.get((p["architecture"], p.get("variant")), p["architecture"])
        manifest = json.loads(blob(m))
        layers[arch] = sum(l["size"] for l in manifest["layers"])

print("size budgets (%s)" % os.path.basename(image))
print("  %-6s %14s %7s %16s %7s" % ("arch", "static binary", "/3 MiB", "layer (gzip)", "/1.5 MiB"))
over = False
for arch in ("amd64", "arm64", "armhf"):
    path = os.path.join(static, arch, "pinniped")
    size = os.path.getsize(path)
    layer = layers.get(arch)
    if layer is None:
        sys.exit("budgets: %s has no %s image" % (image, arch))
    over |= size > BIN_BUDGET or layer > LAYER_BUDGET
    print("  %-6s %9.2f MiB %7.2f %11.2f MiB %7.2f" % (arch, size / MiB, size / BIN_BUDGET, layer / MiB, layer / LAYER_BUDGET))
print("  within budget: %s" % ("no" if over else "yes"))
PY
