#!/usr/bin/env bash
# Regenerate the pictures in README.md and docs/ from the bundled genome and splice-cnn-athaliana
# (the README's main model until 2026-12-06; the pictures were not remade with the ensemble that
# replaced it: set M=splice-cnn-ensemble-athaliana to do so, about 6 min more CPU per scan).
# Needs: the package installed (README set-up) and, for the report screenshot, chromium.
# Usage: bash scripts/make_figures.sh [WORKDIR]   (default: out/figures)
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-out/figures}
G=examples/athaliana
FA=$G/athaliana_1pct.fa.gz
GFF=$G/athaliana_1pct.gff3.gz
mkdir -p "$W/scan" "$W/ism" docs/img

M=${M:-splice-cnn-athaliana}
# 1. a whole-genome scan (both strands), as the README's main command
genaannot scan "$FA" --task splice --model "$M" -o "$W/scan/athaliana.bw" --quiet

# 2. tracks around a real gene of the held-out chromosome (Chr5: never seen in training)
genaannot plot "$FA" --region Chr5:117251-118950 --tracks "$W"/scan/athaliana.*.bw \
  --annotation "$GFF" --calls "$W/scan/athaliana.calls.bed" \
  --title "A. thaliana Chr5 (held out), AT5G01290: $M" -o docs/img/region.png

# 3. in-silico mutagenesis and integrated gradients of an annotated donor on Chr5
#    (AT5G01290.1, + strand, exon 1 ends at 117,618; the model predicts in the exon convention,
#    so its donor is the last exon base, 1-based 117,618, right before the GT)
genaannot ism "$FA" --region Chr5:117571-117670 --site 117618 --task splice --label donor \
  --model "$M" -o "$W/ism/donor"
genaannot attribute "$FA" --region Chr5:117571-117670 --site 117618 --task splice --label donor \
  --model "$M" -o "$W/ism/donor_ig"
genaannot plot "$FA" --region Chr5:117571-117670 \
  --tracks "$W/ism/donor.max_abs.bw" "$W/ism/donor.mean.bw" "$W/ism/donor_ig.bw" \
  --annotation "$GFF" --title "Donor at Chr5:117,618: ISM and integrated gradients" -o docs/img/ism.png

# 4. the HTML report, opened in headless Chromium
genaannot report "$W/scan" -o "$W/scan/report.html" --top 8
if command -v chromium >/dev/null 2>&1; then
  port=8767
  # whole-genome tracks exceed the report's embedding limit, so the page links them and the
  # FASTA relative to itself: serve a folder that holds both (the repository root)
  python3 -m http.server "$port" --bind 127.0.0.1 --directory . >/dev/null 2>&1 &
  server=$!
  trap 'kill $server 2>/dev/null || true' EXIT
  sleep 1
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$(mktemp -d)" --window-size=1280,1250 --virtual-time-budget=20000 \
    --screenshot=docs/img/report.png "http://127.0.0.1:$port/$W/scan/report.html" 2>/dev/null
fi
echo "figures written to docs/img/"
