#!/usr/bin/env bash
# Reproduce splice-cnn-ensemble-athaliana (the README's main model) from the bundled data.
# Run from the repository root after the README's set-up. Times are those of this project's
# 2-core CPU machine (2026-12-06; /usr/bin/time -v). Member 1 is the bundled
# splice-cnn-athaliana (its own card has its command: 36 min 22 s, 3,885 CPU-s).
set -euo pipefail
G=examples/athaliana
W=${1:-ensemble-members}
mkdir -p "$W"
common=(--task splice --genome $G/athaliana_1pct.fa.gz --annotation $G/athaliana_1pct.gff3.gz
        --train-chroms Chr1,Chr2,Chr3 --valid-chroms Chr4 --family dilated_cnn --family-option channels=32
        --lr 1e-3 --eval-every 100 --save-every 100 --valid-windows 256 --threads 2 --no-eval -q)
f1201=(--family-option blocks=11:1x4,11:4x4,21:10x2 --window-tokens 2000 --batch-size 8)   # 1201-bp field
f2001=(--family-option blocks=11:1x4,11:4x4,21:10x4 --window-tokens 3000 --batch-size 6)   # 2001-bp field
# 13 min 59 s, 1,593 CPU-s
genaannot train "${common[@]}" "${f1201[@]}" --steps 800 --seed 1 -o "$W/splice-cnn-1201bp-seed1"
# 24 min 59 s, 2,722 CPU-s
genaannot train "${common[@]}" "${f2001[@]}" --steps 800 --seed 2 -o "$W/splice-cnn-2001bp-seed2"
# 11 min 03 s, 1,020 CPU-s
genaannot train "${common[@]}" "${f1201[@]}" --steps 400 --seed 3 -o "$W/splice-cnn-1201bp-seed3"
# 10 min 33 s, 991 CPU-s
genaannot train "${common[@]}" "${f1201[@]}" --steps 400 --seed 4 -o "$W/splice-cnn-1201bp-seed4"
# seconds: the mean of the five members' probabilities, one checkpoint
(cd "$W" && genaannot models ensemble splice-cnn-athaliana splice-cnn-1201bp-seed1 splice-cnn-2001bp-seed2 \
  splice-cnn-1201bp-seed3 splice-cnn-1201bp-seed4 -o splice-cnn-ensemble-athaliana)
# call thresholds: max F1 on the validation chromosome (2 min)
genaannot evaluate --model "$W/splice-cnn-ensemble-athaliana" --genome $G/athaliana_1pct.fa.gz \
  --annotation $G/athaliana_1pct.gff3.gz --chroms Chr4 --write-thresholds -o "$W/chr4-eval" -q
