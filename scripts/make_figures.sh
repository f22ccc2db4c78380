#!/usr/bin/env bash
# Regenerate the pictures in README.md and docs/ from the bundled demo genome and model.
# Needs: the package installed (README set-up) and, for the report screenshot, chromium.
# Usage: bash scripts/make_figures.sh [WORKDIR]   (default: out/figures)
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-out/figures}
G=examples/athaliana
FA=$G/athaliana_1pct.fa.gz
GFF=$G/athaliana_1pct.gff3.gz
mkdir -p "$W/scan" "$W/ism" docs/img

# 1. a whole-genome scan (both strands) with the demo model (the README's main command uses splice-cnn-athaliana)
genaannot scan "$FA" --task splice --model demo-splice-athaliana -o "$W/scan/athaliana.bw" --quiet

# 2. tracks around a real gene of the held-out chromosome (Chr5: never seen in training)
genaannot plot "$FA" --region Chr5:117251-118950 --tracks "$W"/scan/athaliana.*.bw \
  --annotation "$GFF" --calls "$W/scan/athaliana.calls.bed" \
  --title "A. thaliana Chr5 (held out), AT5G01290: demo-splice-athaliana" -o docs/img/demo_region.png

# 3. in-silico mutagenesis and integrated gradients of an annotated donor on Chr5
#    (AT5G01290.1, + strand, exon 1 ends at 117,618: donor = first intron base (G of GT), 1-based 117,619)
genaannot ism "$FA" --region Chr5:117571-117670 --site 117619 --task splice --label donor \
  --model demo-splice-athaliana -o "$W/ism/donor"
genaannot attribute "$FA" --region Chr5:117571-117670 --site 117619 --task splice --label donor \
  --model demo-splice-athaliana -o "$W/ism/donor_ig"
genaannot plot "$FA" --region Chr5:117571-117670 \
  --tracks "$W/ism/donor.max_abs.bw" "$W/ism/donor.mean.bw" "$W/ism/donor_ig.bw" \
  --annotation "$GFF" --title "Donor at Chr5:117,619: ISM and integrated gradients" -o docs/img/demo_ism.png

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
    --screenshot=docs/img/demo_report.png "http://127.0.0.1:$port/$W/scan/report.html" 2>/dev/null
fi
echo "figures written to docs/img/"
