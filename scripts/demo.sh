#!/usr/bin/env bash
# The offline demo behind `make demo` (run through scripts/with-buildkit.sh):
#  1. show the daemon;  2. make a signing key;
#  3. bootstrap a local repository: package Debian's busybox-static with melange2 itself
#     (--bootstrap-rootfs, the path for a brand-new distribution);
#  4. build examples/hello (a package with a subpackage) against that repository;
#  5. verify the packages and the index, run the package's tests (melange2 test) and the program.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${MELANGE2_BIN:-target/debug/melange2}
demo=.state/demo
out=packages
mkdir -p "$demo"

echo "== 1. BuildKit daemon"
"$bin" buildkit info

echo "== 2. signing key"
[ -f "$demo/melange.rsa" ] || "$bin" keygen --key-size 2048 "$demo/melange.rsa"

echo "== 3. bootstrap repository: busybox from Debian's busybox-static"
rootfs="$demo/bootstrap-rootfs"
rm -rf "$rootfs" "$demo/busybox-src"
mkdir -p "$rootfs/bin" "$demo/busybox-src"
cp /bin/busybox "$rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -s busybox "$rootfs/bin/$applet"
done
cp /bin/busybox "$demo/busybox-src/busybox"
"$bin" build examples/bootstrap/busybox.yaml \
  --bootstrap-rootfs "$rootfs" --source-dir "$demo/busybox-src" \
  --signing-key "$demo/melange.rsa" --out-dir "$demo/repo"

echo "== 4. build examples/hello"
"$bin" build examples/hello/melange.yaml \
  -r "$demo/repo" -k "$demo/melange.rsa.pub" \
  --signing-key "$demo/melange.rsa" --out-dir "$out"

echo "== 5. verify, test and try"
arch=$(basename "$(dirname "$(ls "$out"/*/APKINDEX.tar.gz | head -n1)")")
"$bin" verify --keyring "$demo/melange.rsa.pub" "$out/$arch"/*.apk "$out/$arch/APKINDEX.tar.gz"
"$bin" test examples/hello/melange.yaml -r "$out" -r "$demo/repo" -k "$demo/melange.rsa.pub"
try="$demo/try"
rm -rf "$try" && mkdir -p "$try"
tar -xzf "$out/$arch/hello-1.0.0-r0.apk" -C "$try" 2>/dev/null || true
sh "$try/usr/bin/hello"

echo
echo "Done. Packages and the signed index: $out/$arch/"
ls -l "$out/$arch/"
echo "Public key to trust them: $demo/melange.rsa.pub"
