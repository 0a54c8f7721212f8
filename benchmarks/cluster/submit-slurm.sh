#!/usr/bin/env bash
# Submit the IDGI paper's benchmark for each model as a SLURM job array of SHARDS tasks, and one
# dependent job per model that merges the shards into tables.md / tables.csv / figures/ when the
# array has ended (afterany: a failed shard is listed as missing in the tables, not silently lost;
# resubmit just that task with --array=I and run the report again).
#
# Usage: IMAGENET_DIR=/data/imagenet OUT=/shared/runs SHARDS=16 \
#          bash benchmarks/cluster/submit-slurm.sh [MODEL ...]     (default: the paper's 11 models)
# Extra sbatch options (partition, account): SBATCH_OPTIONS="--partition=gpu --account=me".
# How to choose SHARDS: benchmarks/cluster/README.md.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
: "${IMAGENET_DIR:?set IMAGENET_DIR to the folder holding ILSVRC2012_img_val.tar}" "${OUT:?set OUT (shared)}"
SHARDS=${SHARDS:-8}
MODELS=("$@")
if (( ${#MODELS[@]} == 0 )); then
  MODELS=(DenseNet121 DenseNet169 DenseNet201 InceptionV3 MobileNetV2 ResNet50V2 ResNet101V2 ResNet152V2
          VGG16 VGG19 Xception)
fi
export IMAGENET_DIR OUT STEPS="${STEPS:-200}" LIMIT="${LIMIT:-}"
for model in "${MODELS[@]}"; do
  # shellcheck disable=SC2086
  array=$(MODEL="$model" sbatch --parsable ${SBATCH_OPTIONS:-} --export=ALL,MODEL="$model" \
    --array="0-$((SHARDS - 1))" "$HERE/bench-array.sbatch")
  # shellcheck disable=SC2086
  sbatch --parsable ${SBATCH_OPTIONS:-} --dependency=afterany:"${array%%;*}" --job-name="idgi-report-$model" \
    --cpus-per-task=4 --time=1:00:00 --output="idgi-report-$model-%j.out" \
    --wrap="python -m idgi_tf.bench report '$OUT/$model'"
  echo "$model: array $array ($SHARDS shards), report after it"
done
