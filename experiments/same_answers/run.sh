#!/usr/bin/env bash
# Same answers before and after a refactor of the inference side: train the plain default
# real-data command, then ask it for a pair, a 4-person group (mean and least misery) and two
# people from their exports; everything lands in OUT for a `diff -r`.
#
#   bash experiments/same_answers/run.sh SRC OUT [DATA]
#     SRC   the duorec source tree to run (e.g. src, or another checkout's src)
#     OUT   the folder for metrics.json and the recommendation CSVs
#     DATA  where ml-latest-small/ml-100k/imdb-subset live (default: ../shared/data)
# One thread, so the numbers do not depend on how busy the machine is.
set -euo pipefail
src=$(realpath "$1"); out=$(realpath -m "$2"); data=$(realpath "${3:-../shared/data}")
repo=$(dirname "$src")
mkdir -p "$out"
export PYTHONPATH="$src" OMP_NUM_THREADS=1 WANDB_MODE=disabled DUOREC_DATA="$data"
py=${PYTHON:-python}
cd "$repo"
for set in ml-100k ml-latest-small; do
  runs="$out/$set/runs"
  "$py" -m duorec.train data=movielens data.movielens_dir="$data/$set" \
      data.imdb_dir="$data/imdb-subset" paths.log_dir="$runs" >"$out/$set.train.log" 2>&1
  run=$(ls -d "$runs"/train/runs/*/ | tail -1)
  cp "$run/metrics.json" "$out/$set/metrics.json"
  rec() { "$py" -m duorec.recommend ckpt_path="$run" paths.log_dir="$runs" "$@" 2>&1 | grep -v "^\[\|Using\|seconds" ; }
  rec users=[1,42] output="$out/$set/pair.csv" >"$out/$set/pair.txt"
  rec users=[1,42,100,200] aggregate=mean output="$out/$set/group_mean.csv" >"$out/$set/group_mean.txt"
  rec users=[1,42,100,200] aggregate=min output="$out/$set/group_min.csv" >"$out/$set/group_min.txt"
  rec people=[examples/people/alice.csv,examples/people/bob.csv] output="$out/$set/people.csv" >"$out/$set/people.txt"
done
