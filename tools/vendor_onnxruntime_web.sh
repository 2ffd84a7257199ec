#!/usr/bin/env bash
# Reproduce src/resemotenet/serve/static/ort/ (ONNX Runtime Web, MIT licence) from the npm
# registry: the page's on-device mode runs the models in the browser with these three files, so
# frames never leave it. Every file is checked against a known sha256; nothing is modified.
#
#   tools/vendor_onnxruntime_web.sh    # needs npm and access to the npm registry
set -euo pipefail

VERSION=1.31.1
TGZ_SHA256=bdccdb9fbb9ab537247c0c734e9b1d2b1b338b4f2a09faa58f0dc1cfa27c312c
declare -A FILES=(
    [ort.wasm.min.js]=b8a78c408c40da65fdc8ba0846f7b2948e92a4c6d6b23cc8e4165e428ad95443
    [ort-wasm-simd-threaded.mjs]=30ed0b5cd1182ede931fea448afb567d4dc705ec957af09f108a2be5f770dac3
    [ort-wasm-simd-threaded.wasm]=4b884c203b0fa48d057be3332c65513ff85aa3c5bddd6946acc0fab7ecda001d
)
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/src/resemotenet/serve/static/ort"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

check() {  # check FILE SHA256
    local got
    got=$(sha256sum "$1" | cut -d' ' -f1)
    if [ "$got" != "$2" ]; then
        echo "sha256 mismatch for $1: got $got, expected $2" >&2
        exit 1
    fi
}

(cd "$tmp" && npm pack --silent "onnxruntime-web@$VERSION" >/dev/null)
check "$tmp/onnxruntime-web-$VERSION.tgz" "$TGZ_SHA256"
tar -xzf "$tmp/onnxruntime-web-$VERSION.tgz" -C "$tmp"
mkdir -p "$dest"
for name in "${!FILES[@]}"; do
    check "$tmp/package/dist/$name" "${FILES[$name]}"
    cp "$tmp/package/dist/$name" "$dest/$name"
done
echo "onnxruntime-web $VERSION -> $dest"
