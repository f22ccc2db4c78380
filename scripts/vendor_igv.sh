#!/usr/bin/env bash
# Vendor igv.js (MIT, Broad Institute / UC Regents) into genaannot/data/igv/ from the npm registry.
# Usage: scripts/vendor_igv.sh [VERSION]   (default: the version pinned below)
# Writes igv.min.js, LICENSE and VERSION; `genaannot report` embeds igv.min.js into its HTML page.
set -euo pipefail
VERSION="${1:-3.8.10}"
cd "$(dirname "$0")/.."
dest="genaannot/data/igv"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack "igv@${VERSION}" --silent >/dev/null && tar xzf "igv-${VERSION}.tgz")
test -s "$tmp/package/dist/igv.min.js" || { echo "igv@${VERSION}: dist/igv.min.js missing" >&2; exit 1; }
grep -q "MIT License" "$tmp/package/LICENSE" || { echo "igv@${VERSION}: licence is no longer MIT; check before vendoring" >&2; exit 1; }
mkdir -p "$dest"
cp "$tmp/package/dist/igv.min.js" "$dest/igv.min.js"
cp "$tmp/package/LICENSE" "$dest/LICENSE"
printf '%s\n' "$VERSION" > "$dest/VERSION"
sha256sum "$dest/igv.min.js" | cut -d' ' -f1 > "$dest/igv.min.js.sha256"
echo "vendored igv.js ${VERSION} into ${dest}"
