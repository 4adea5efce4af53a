#!/usr/bin/env bash
# Vendor Chart.js for the reports page: fetch the published npm tarball (npm checks its
# integrity against the registry), copy the minified UMD build and the licence into
# api/static/vendor/, and record where they came from. Re-run with another version to upgrade:
#   scripts/vendor_chart.sh 4.6.1
set -euo pipefail
version="${1:-4.6.1}"
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/api/static/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$work"
integrity="$(npm view "chart.js@$version" dist.integrity)"
npm pack "chart.js@$version" --silent >/dev/null
tar xzf "chart.js-$version.tgz"
grep -q "Chart.js v$version" package/dist/chart.umd.min.js

mkdir -p "$dest"
rm -f "$dest"/chart-*.umd.min.js "$dest"/chart-*.LICENSE.md "$dest"/chart.VERSION
cp package/dist/chart.umd.min.js "$dest/chart-$version.umd.min.js"
cp package/LICENSE.md "$dest/chart-$version.LICENSE.md"
cat >"$dest/chart.VERSION" <<INFO
chart.js $version (MIT), file dist/chart.umd.min.js of the npm package
tarball: https://registry.npmjs.org/chart.js/-/chart.js-$version.tgz
integrity: $integrity
sha256 of chart-$version.umd.min.js: $(sha256sum "$dest/chart-$version.umd.min.js" | cut -d' ' -f1)
made by: scripts/vendor_chart.sh $version
INFO
echo "vendored chart.js $version into ${dest#"$root"/}"
