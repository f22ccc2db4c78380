#!/usr/bin/env bash
# Wheels that the workplace's GPU machines lack (their image has torch, transformers, numpy,
# numba, click, tqdm, matplotlib, pytest, hypothesis, pytest-xdist, but not these), for their
# CPython 3.12 on x86-64, into .whl/ (git-ignored). Run here, where pip reaches an index; then
# `bash bench/gpu_check.sh` there, carrying .whl (docs/development.md "On a GPU machine").
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .whl && mkdir .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
    pyBigWig pybigtools pybedtools pysam
ls .whl
