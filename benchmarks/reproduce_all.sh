#!/usr/bin/env bash
# Reproduce the IDGI paper's Tables 1-4 for all 11 classifiers on ImageNet validation.
#
# Needs: ILSVRC2012_img_val.tar in $IMAGENET_DIR (image-net.org, after registering),
# and the Keras ImageNet weights of each model in the Keras cache ($KERAS_HOME/models,
# default ~/.keras/models; an online machine downloads them on first use).
#
# The local wrapper of the cluster mechanism (benchmarks/cluster/: SLURM job arrays and Kubernetes
# Indexed Jobs with --shard auto): each GPU of this box runs one shard of every model
# (CUDA_VISIBLE_DEVICES=i, --shard i/N), then `report` merges the shards. On several boxes give
# each its own shard range (SHARD_OFFSET, SHARDS_TOTAL) and run `report` over the shared folder.
# ONE_PROCESS=1 runs one process per model with --devices all instead (all GPUs through
# tf.distribute.MirroredStrategy). The run is resumable: rerun the same command after a crash.
# About 250 box-hours for the 11 models on one H100 box; per-model estimates and how to choose
# the number of shards: benchmarks/cluster/README.md. Use LIMIT for a partial table first.
#
# Usage: IMAGENET_DIR=~/imagenet bash benchmarks/reproduce_all.sh [OUT=runs]
set -euo pipefail

IMAGENET_DIR=${IMAGENET_DIR:?set IMAGENET_DIR to the folder holding ILSVRC2012_img_val.tar}
OUT=${1:-runs}
GPUS=${GPUS:-$(nvidia-smi --list-gpus 2>/dev/null | wc -l || echo 1)}
GPUS=$(( GPUS > 0 ? GPUS : 1 ))
ONE_PROCESS=${ONE_PROCESS:-}   # 1: one process per model over all GPUs (--devices all)
if [[ -n "$ONE_PROCESS" ]]; then SHARDS_TOTAL=${SHARDS_TOTAL:-1}; else SHARDS_TOTAL=${SHARDS_TOTAL:-$GPUS}; fi
SHARD_OFFSET=${SHARD_OFFSET:-0}
LIMIT=${LIMIT:-}          # e.g. LIMIT=1000 for a quick partial table
STEPS=${STEPS:-200}
MODELS=${MODELS:-"DenseNet121 DenseNet169 DenseNet201 InceptionV3 MobileNetV2 ResNet50V2 ResNet101V2 ResNet152V2 VGG16 VGG19 Xception"}

for model in $MODELS; do
  if [[ -n "$ONE_PROCESS" ]]; then
    python -m idgi_tf.bench run --model "$model" --data imagenet --imagenet-dir "$IMAGENET_DIR" \
      --steps "$STEPS" ${LIMIT:+--limit "$LIMIT"} --devices all \
      --shard "$SHARD_OFFSET/$SHARDS_TOTAL" --out "$OUT/$model" --quiet
    python -m idgi_tf.bench report "$OUT/$model"
    continue
  fi
  for (( gpu = 0; gpu < GPUS; gpu++ )); do
    shard=$(( SHARD_OFFSET + gpu ))
    CUDA_VISIBLE_DEVICES=$gpu python -m idgi_tf.bench run --model "$model" --data imagenet \
      --imagenet-dir "$IMAGENET_DIR" --steps "$STEPS" ${LIMIT:+--limit "$LIMIT"} \
      --shard "$shard/$SHARDS_TOTAL" --out "$OUT/$model" --quiet &
  done
  wait
  python -m idgi_tf.bench report "$OUT/$model"
done
echo "tables: $OUT/*/tables.md"
