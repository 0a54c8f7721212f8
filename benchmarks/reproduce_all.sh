#!/usr/bin/env bash
# Reproduce the IDGI paper's Tables 1-4 for all 11 classifiers on ImageNet validation.
#
# Needs: ILSVRC2012_img_val.tar in $IMAGENET_DIR (image-net.org, after registering),
# and the Keras ImageNet weights of each model in the Keras cache ($KERAS_HOME/models,
# default ~/.keras/models; an online machine downloads them on first use).
#
# Each GPU runs one shard of every model (CUDA_VISIBLE_DEVICES=i, --shard i/N), so
# N GPUs split the images N ways; on several machines give each machine its own
# shard range (SHARD_OFFSET, SHARDS_TOTAL) and merge with `report` over the run folders.
# The run is resumable: rerun the same command after a crash or kill.
#
# Time (an ESTIMATE, not measured on a GPU: none was lent to the session that wrote
# this). Per image, on the 2-core CPU of benchmarks/RESULTS.md, ResNet50V2 costs
# ~604 forward+backward passes (IG, GIG, BlurIG at 200 steps, VG; ~157 s), 7 maps x 75
# forward passes for the metrics (~47 s), 175 lossless-WebP encodings (~25 s of one
# core) and 175 MS-SSIMs (~26 s). Assuming a GPU runs the model work ~200x faster and
# the WebP pool spreads over 16 cores, one H100 box needs ~2.5 s per image, WebP-bound:
# ~26 h for ResNet50V2's ~38,000 correctly classified validation images, and roughly
# 1-3 days per model (VGG and DenseNet201 slower, MobileNetV2 faster). Use LIMIT for a
# partial table first, and more boxes (SHARD_OFFSET / SHARDS_TOTAL) to divide the time.
#
# Usage: IMAGENET_DIR=~/imagenet bash benchmarks/reproduce_all.sh [OUT=runs]
set -euo pipefail

IMAGENET_DIR=${IMAGENET_DIR:?set IMAGENET_DIR to the folder holding ILSVRC2012_img_val.tar}
OUT=${1:-runs}
GPUS=${GPUS:-$(nvidia-smi --list-gpus 2>/dev/null | wc -l || echo 1)}
GPUS=$(( GPUS > 0 ? GPUS : 1 ))
SHARDS_TOTAL=${SHARDS_TOTAL:-$GPUS}
SHARD_OFFSET=${SHARD_OFFSET:-0}
LIMIT=${LIMIT:-}          # e.g. LIMIT=1000 for a quick partial table
STEPS=${STEPS:-200}
MODELS=${MODELS:-"DenseNet121 DenseNet169 DenseNet201 InceptionV3 MobileNetV2 ResNet50V2 ResNet101V2 ResNet152V2 VGG16 VGG19 Xception"}

for model in $MODELS; do
  for (( gpu = 0; gpu < GPUS; gpu++ )); do
    shard=$(( SHARD_OFFSET + gpu ))
    CUDA_VISIBLE_DEVICES=$gpu python -m idgi_tf.bench --model "$model" --data imagenet \
      --imagenet-dir "$IMAGENET_DIR" --steps "$STEPS" ${LIMIT:+--limit "$LIMIT"} \
      --shard "$shard/$SHARDS_TOTAL" --out "$OUT/$model" --quiet &
  done
  wait
  python -m idgi_tf.bench report "$OUT/$model"
done
echo "tables: $OUT/*/tables.md"
