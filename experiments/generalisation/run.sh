#!/usr/bin/env bash
# The generalisation study: the default recipe of `python -m duorec.train`, unchanged, on
# 3 data sets x 3 splits (random, chrono, temporal) x 3 seeds (README.md says why).
#
#   bash experiments/generalisation/run.sh MOVIELENS_ROOT IMDB_DIR [LOG_DIR] [OVERRIDE ...]
#
# MOVIELENS_ROOT holds ml-latest-small/ and ml-100k/, IMDB_DIR the IMDb subset; LOG_DIR defaults
# to logs/generalisation in this checkout. Each job runs in
# LOG_DIR/train/runs/<data>_<split>_seed<seed> (where `python -m duorec.evaluate
# paths.log_dir=LOG_DIR` also finds it), two at a time with one thread each. Rerunning skips
# jobs that wrote metrics.json and resumes unfinished ones from their last.ckpt (same result as
# an uninterrupted run: src/duorec/train.py).
# Subsets: DATASETS="synthetic ml-100k" SPLITS=temporal SEEDS="0 1"; JOBS=2 jobs at once;
# PYTHON=python. OVERRIDEs go to every job: for checks only, the study is the default recipe.
set -euo pipefail

(($# >= 2)) || { sed -n '5,16p' "$0" >&2; exit 2; }
repo=$(cd "$(dirname "$0")/../.." && pwd)
ml_root=$(realpath -m "$1") imdb_dir=$(realpath -m "$2")
shift 2
log_dir=$repo/logs/generalisation
if (($#)) && [[ $1 != *=* ]]; then log_dir=$(realpath -m "$1"); shift; fi
extra=("$@")
DATASETS=${DATASETS:-synthetic ml-latest-small ml-100k}
SPLITS=${SPLITS:-random chrono temporal}
SEEDS=${SEEDS:-0 1 2}
JOBS=${JOBS:-2}
PYTHON=${PYTHON:-python}

for data in $DATASETS; do  # fail before starting anything, not an hour in
  case $data in
    synthetic) ;;
    ml-latest-small | ml-100k)
      for dir in "$ml_root/$data" "$imdb_dir"; do
        [[ -d $dir ]] || { echo "$data needs $dir: not a folder" >&2; exit 2; }
      done ;;
    *) echo "unknown data set $data: synthetic, ml-latest-small or ml-100k" >&2; exit 2 ;;
  esac
done

run_dir() { echo "$log_dir/train/runs/$1_$2_seed$3"; }

# One job: data set, split, seed. Its output goes to <run>/stdout.log.
run_job() {
  local data=$1 split=$2 seed=$3 dir
  dir=$(run_dir "$@")
  if [[ -f $dir/metrics.json ]]; then echo "done already: $dir"; return; fi
  local args=(seed="$seed" data.split.method="$split" paths.log_dir="$log_dir"
    hydra.run.dir="$dir" callbacks.progress_bar=null)
  if [[ $data != synthetic ]]; then
    args+=(data=movielens data.movielens_dir="$ml_root/$data" data.imdb_dir="$imdb_dir")
  fi
  if [[ -f $dir/checkpoints/last.ckpt ]]; then
    args+=(ckpt_path="$dir/checkpoints/last.ckpt")
  else
    rm -rf "$dir"  # killed before its first epoch ended: nothing to resume
  fi
  mkdir -p "$dir"
  echo "start: $dir"
  (cd "$repo" && OMP_NUM_THREADS=1 WANDB_MODE=disabled \
    PYTHONPATH="$repo/src${PYTHONPATH:+:$PYTHONPATH}" \
    "$PYTHON" -m duorec.train "${args[@]}" "${extra[@]}") >>"$dir/stdout.log" 2>&1 || true
  # judged by metrics.json, not the exit status: a SIGTERM'd run can stop cleanly without one
  if [[ -f $dir/metrics.json ]]; then
    echo "finished: $dir"
  else
    echo "FAILED: $dir (see its stdout.log)"
  fi
}

# seeds outermost: an interrupted study has every data set x split at least once
for seed in $SEEDS; do
  for data in $DATASETS; do
    for split in $SPLITS; do
      while (($(jobs -rp | wc -l) >= JOBS)); do wait -n || true; done
      run_job "$data" "$split" "$seed" &
    done
  done
done
wait

missing=0
for seed in $SEEDS; do for data in $DATASETS; do for split in $SPLITS; do
  [[ -f $(run_dir "$data" "$split" "$seed")/metrics.json ]] || missing=$((missing + 1))
done; done; done
echo "$log_dir: $missing job(s) without metrics.json"
echo "next: python experiments/generalisation/collect.py $log_dir"
((missing == 0))
