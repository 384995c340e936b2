#!/usr/bin/env bash
# GluonCV model zoo, UCF101 split 1: inceptionv3_ucf101, TSN with 3 segments, from ImageNet -- published top-1 88.1.
# The published 8-GPU command line; environment variables and scaling rules: common.sh.
#   bash scripts/model_zoo/inceptionv3_ucf101_tsn.sh [extra train_recognizer.py flags]
#   NUM_GPUS=2 DATA_DIR=/data/ucf101/rawframes bash scripts/model_zoo/inceptionv3_ucf101_tsn.sh
#   SMOKE=1 bash scripts/model_zoo/inceptionv3_ucf101_tsn.sh        # a few CPU iterations on a synthetic set
set -euo pipefail
source "$(dirname "$0")/common.sh"

ROW_FLAGS=(--model inceptionv3_ucf101 "${COMMON_2D_FLAGS[@]}"
           --batch-size 15 --num-segments 3 --use-tsn --new-height 340 --new-width 450 --input-size 299
           --clip-grad 40 --partial-bn)
# Smoke mode: inceptionv3 accepts no input under 299 px (its final 8x8 average pool), so only
# the batch, epochs and data shrink.
SMOKE_SIZES=("--input-size 299")

run_model_zoo_row inceptionv3_ucf101_tsn "$@"
