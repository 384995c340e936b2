#!/usr/bin/env bash
# GluonCV model zoo, UCF101 split 1: i3d_resnet50_v1_ucf101, 32-frame clips (64 frames, step 2), from ImageNet -- published top-1 83.9.
# The published 8-GPU command line; environment variables and scaling rules: common.sh.
#   bash scripts/model_zoo/i3d_resnet50_v1_ucf101.sh [extra train_recognizer.py flags]
#   NUM_GPUS=2 DATA_DIR=/data/ucf101/rawframes bash scripts/model_zoo/i3d_resnet50_v1_ucf101.sh
#   SMOKE=1 bash scripts/model_zoo/i3d_resnet50_v1_ucf101.sh        # a few CPU iterations on a synthetic set
set -euo pipefail
source "$(dirname "$0")/common.sh"

ROW_FLAGS=("${I3D_FLAGS[@]}")
# Smoke mode: tiny frames; 8 frames per clip is the shortest I3D accepts (its temporal pooling).
SMOKE_SIZES=("--input-size 32" "--new-height 40" "--new-width 53" "--new-length 8")

run_model_zoo_row i3d_resnet50_v1_ucf101 "$@"
