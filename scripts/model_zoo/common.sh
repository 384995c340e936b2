# Shared by the scripts/model_zoo/*.sh rows: one function, run_model_zoo_row, that turns a row's
# published GluonCV flags into the train_recognizer.py command for this machine, prints it, runs it.
# Sourced, not run.
#
# Environment (all optional):
#   DATA_DIR    frame folders            default ~/.mxnet/datasets/ucf101/rawframes (GluonCV's)
#   TRAIN_LIST  training list            default $(dirname DATA_DIR)/ucfTrainTestlist/ucf101_train_split_1_rawframes.txt
#   VAL_LIST    validation list          default $(dirname DATA_DIR)/ucfTrainTestlist/ucf101_val_split_1_rawframes.txt
#   NUM_GPUS    GPUs to use, 0 = CPU     default 8 (as published)
#   SAVE_DIR    output folder            default ./params/<row name>  (smoke: a temporary folder)
#   PYTHON      interpreter with mxnet   default: the first of $VIRTUAL_ENV, <repo>/venv, <repo>/../venv,
#                                        python, python3 that has mxnet
#   DRY_RUN=1   print the command, do not run it
#   SMOKE=1     a few CPU iterations at a tiny input size (see smoke_overrides)
#   SMOKE_TRAIN_CLIPS / SMOKE_VAL_CLIPS  clips kept from the lists in smoke mode (default 4 / 2)
# Arguments after the script name are appended to the command: a repeated flag overrides the row's.
#
# Fewer (or more) GPUs than the published 8: the total batch (8 x published per-GPU batch) and --lr
# stay as published. The per-GPU batch stays as published (it is what fitted one GPU's memory and it
# sets the BatchNorm statistics) and --accumulate makes up the rest; when NUM_GPUS does not divide
# the total exactly, the nearest total is used and --lr is scaled linearly with it (printed).

MODEL_ZOO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PUBLISHED_GPUS=8

# Flags of every published 2D (vgg16/inceptionv3) run; each row adds its own.
COMMON_2D_FLAGS=(--mode hybrid --num-classes 101 --num-gpus 8 --num-data-workers 32
                 --lr-mode step --lr 0.001 --momentum 0.9 --wd 0.0005 --lr-decay 0.1
                 --lr-decay-epoch 30,60,80 --num-epochs 80 --save-frequency 5 --log-interval 10)

# The published I3D run (both I3D rows).
I3D_FLAGS=(--dataset ucf101 --mode hybrid --dtype float32 --prefetch-ratio 1.0
           --model i3d_resnet50_v1_ucf101 --num-classes 101 --batch-size 8 --num-gpus 8
           --num-data-workers 32 --input-size 224 --new-height 256 --new-width 340 --new-length 32
           --new-step 2 --lr 0.001 --lr-decay 0.1 --lr-mode step --lr-decay-epoch 20,40,50
           --momentum 0.9 --wd 0.0001 --num-epochs 50 --scale-ratios 1.0,0.8 --save-frequency 5
           --clip-grad 40 --log-interval 20)

say() { printf '[%s] %s\n' "$ROW" "$*"; }
die() { printf '[%s] error: %s\n' "$ROW" "$*" >&2; exit 2; }

# set_flag NAME VALUE: give NAME this value in CMD (in place), or append it.
set_flag() {
    local i
    for ((i = 0; i < ${#CMD[@]}; i++)); do
        if [[ ${CMD[i]} == "$1" ]]; then CMD[i + 1]=$2; return; fi
    done
    CMD+=("$1" "$2")
}

# flag_value NAME: NAME's value in CMD.
flag_value() {
    local i
    for ((i = 0; i < ${#CMD[@]}; i++)); do
        if [[ ${CMD[i]} == "$1" ]]; then printf '%s' "${CMD[i + 1]}"; return; fi
    done
}

find_python() {
    local candidates=("${PYTHON:-}" "${VIRTUAL_ENV:+$VIRTUAL_ENV/bin/python}" "$MODEL_ZOO_ROOT/venv/bin/python"
                      "$(dirname "$MODEL_ZOO_ROOT")/venv/bin/python" python python3) p
    for p in "${candidates[@]}"; do
        [[ -n $p ]] && command -v "$p" >/dev/null 2>&1 || continue
        if "$p" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("mxnet") is None)' 2>/dev/null; then
            printf '%s' "$p"; return
        fi
        [[ -n ${PYTHON:-} && $p == "$PYTHON" ]] && die "PYTHON=$PYTHON cannot import mxnet"
    done
    die "no python with mxnet found; set PYTHON=/path/to/python (e.g. your virtualenv's bin/python)"
}

# scale_to_gpus G: keep the published total batch and --lr on G devices (G=0: one CPU context).
scale_to_gpus() {
    local gpus=$1 devices per_gpu total acc batch lr
    [[ $gpus =~ ^[0-9]+$ ]] || die "NUM_GPUS=$gpus: give a number of GPUs (0 trains on the CPU)"
    devices=$(( gpus > 0 ? gpus : 1 ))
    per_gpu=$(flag_value --batch-size)
    total=$(( PUBLISHED_GPUS * per_gpu ))
    set_flag --num-gpus "$gpus"
    if (( devices >= PUBLISHED_GPUS && total % devices == 0 )); then
        batch=$(( total / devices )); acc=1
    else
        acc=$(( (total + devices * per_gpu - 1) / (devices * per_gpu) ))
        batch=$(( (2 * total + devices * acc) / (2 * devices * acc) ))   # rounded
    fi
    set_flag --batch-size "$batch"
    (( acc > 1 )) && set_flag --accumulate "$acc"
    say "published: $PUBLISHED_GPUS GPUs x $per_gpu clips = total batch $total, --lr $(flag_value --lr)"
    if (( devices * batch * acc == total )); then
        say "here: $devices device(s) x $batch clips x --accumulate $acc = total batch $total, --lr as published"
        return
    fi
    lr=$(awk -v lr="$(flag_value --lr)" -v r="$(( devices * batch * acc ))" -v t="$total" \
         'BEGIN { printf "%.6g", lr * r / t }')
    set_flag --lr "$lr"
    say "here: $devices device(s) x $batch clips x --accumulate $acc = total batch $(( devices * batch * acc ))" \
        "($total cannot be split evenly): --lr scaled linearly to $lr"
}

# subset_list IN OUT K: K lines spread evenly over IN (all of them when K <= 0 or K >= lines).
subset_list() {
    [[ -f $1 ]] || die "list file $1 does not exist; set TRAIN_LIST/VAL_LIST"
    awk -v k="$3" 'NF { line[++n] = $0 }
        END { if (k <= 0 || k >= n) { for (i = 1; i <= n; i++) print line[i] }
              else for (j = 0; j < k; j++) print line[int(j * n / k) + 1] }' "$1" > "$2"
}

# smoke_data: DATA_DIR/TRAIN_LIST/VAL_LIST for a smoke run (given ones, cut short, or synthetic).
smoke_data() {
    if [[ -z ${DATA_DIR:-} ]]; then
        say "smoke: no DATA_DIR given, generating a synthetic set in $SMOKE_TMP/synthetic"
        "$PY" "$MODEL_ZOO_ROOT/scripts/make_synthetic_ucf101.py" --out-dir "$SMOKE_TMP/synthetic" \
            --num-classes 2 --train-per-class 2 --val-per-class 1 --frames 16 --width 64 --height 48 \
            --no-videos > "$SMOKE_TMP/synthetic.log" 2>&1 || { cat "$SMOKE_TMP/synthetic.log" >&2; exit 2; }
        DATA_DIR=$SMOKE_TMP/synthetic/rawframes
        TRAIN_LIST=$SMOKE_TMP/synthetic/ucfTrainTestlist/ucf101_train_split_1_rawframes.txt
        VAL_LIST=$SMOKE_TMP/synthetic/ucfTrainTestlist/ucf101_val_split_1_rawframes.txt
    fi
    default_lists
    subset_list "$TRAIN_LIST" "$SMOKE_TMP/train_list.txt" "${SMOKE_TRAIN_CLIPS:-4}"
    subset_list "$VAL_LIST" "$SMOKE_TMP/val_list.txt" "${SMOKE_VAL_CLIPS:-2}"
    TRAIN_LIST=$SMOKE_TMP/train_list.txt
    VAL_LIST=$SMOKE_TMP/val_list.txt
    SAVE_DIR=${SAVE_DIR:-$SMOKE_TMP/run}
}

default_lists() {
    local anno
    anno=$(dirname "$DATA_DIR")/ucfTrainTestlist
    TRAIN_LIST=${TRAIN_LIST:-$anno/ucf101_train_split_1_rawframes.txt}
    VAL_LIST=${VAL_LIST:-$anno/ucf101_val_split_1_rawframes.txt}
}

# smoke_overrides: only sizes, epochs, devices and data change; every optimisation flag is kept.
smoke_overrides() {
    set_flag --num-gpus 0
    set_flag --batch-size 2
    set_flag --num-data-workers 0
    set_flag --num-epochs 1
    local pair
    for pair in "${SMOKE_SIZES[@]}"; do set_flag ${pair% *} "${pair#* }"; done
    CMD+=(--no-pretrained-base)   # no weights on a test machine; also skips --use-kinetics-pretrain
}

# run_model_zoo_row NAME ARGS...: uses the row's ROW_FLAGS and SMOKE_SIZES arrays.
run_model_zoo_row() {
    ROW=$1; shift
    PY=$(find_python)
    CMD=("${ROW_FLAGS[@]}")
    if [[ ${SMOKE:-0} == 1 ]]; then
        SMOKE_TMP=$(mktemp -d "${TMPDIR:-/tmp}/model_zoo_smoke.XXXXXX")
        # Only the temporary folder is removed; a SAVE_DIR that was given is kept.
        trap 'rm -rf "$SMOKE_TMP"' EXIT
        smoke_data
        smoke_overrides
    else
        DATA_DIR=${DATA_DIR:-$HOME/.mxnet/datasets/ucf101/rawframes}
        default_lists
        SAVE_DIR=${SAVE_DIR:-params/$ROW}
        scale_to_gpus "${NUM_GPUS:-$PUBLISHED_GPUS}"
    fi
    CMD=("$PY" "$MODEL_ZOO_ROOT/train_recognizer.py" "${CMD[@]}" --data-dir "$DATA_DIR"
         --train-list "$TRAIN_LIST" --val-list "$VAL_LIST" --save-dir "$SAVE_DIR" "$@")
    printf '+'; local arg
    for arg in "${CMD[@]}"; do
        if [[ $arg =~ ^[][A-Za-z0-9_./,:=+@%~-]+$ ]]; then printf ' %s' "$arg"; else printf ' %q' "$arg"; fi
    done
    printf '\n'
    [[ ${DRY_RUN:-0} == 1 ]] && return 0
    if [[ ${SMOKE:-0} == 1 ]]; then
        "${CMD[@]}"   # not exec: the temporary folder is removed afterwards
    else
        exec "${CMD[@]}"
    fi
}
