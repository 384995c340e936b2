#!/usr/bin/env bash
# GluonCV model zoo, UCF101 split 1: vgg16_ucf101, TSN with 3 segments, from ImageNet -- published top-1 83.4.
# The published 8-GPU command line; environment variables and scaling rules: common.sh.
#   bash scripts/model_zoo/vgg16_ucf101_tsn.sh [extra train_recognizer.py flags]
#   NUM_GPUS=2 DATA_DIR=/data/ucf101/rawframes bash scripts/model_zoo/vgg16_ucf101_tsn.sh
#   SMOKE=1 bash scripts/model_zoo/vgg16_ucf101_tsn.sh        # a few CPU iterations on a synthetic set
set -euo pipefail
source "$(dirname "$0")/common.sh"

ROW_FLAGS=(--model vgg16_ucf101 "${COMMON_2D_FLAGS[@]}"
           --batch-size 25 --num-segments 3 --use-tsn --new-height 256 --new-width 340 --input-size 224)
# Smoke mode: tiny frames (vgg16 accepts 32 px).
SMOKE_SIZES=("--input-size 32" "--new-height 40" "--new-width 53")

run_model_zoo_row vgg16_ucf101_tsn "$@"
