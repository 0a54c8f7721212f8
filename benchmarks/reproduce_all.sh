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
# ONE_PROCESS=1 runs one process per model with --devices all instead (all GPUs through
# tf.distribute.MirroredStrategy). The run is resumable: rerun the same command after a
# crash or kill.
#
# Time per model on one H100 box (16 cores), an ESTIMATE from measured parts
# (benchmarks/gpu_model_passes.py, data in benchmarks/gpu_passes_h100.json). idgi_tf
# itself could not run on the lent H100 (no TensorFlow there, no network), so the model
# passes were timed with the same Keras Applications on Keras 3's JAX backend (XLA, fp32,
# batch 128, random weights); TF's own kernels may be slower. Per image the benchmark
# costs 604 gradient passes (IG, GIG, BlurIG at 200 steps; VG), ~525 forward passes
# (metrics) and 175 lossless-WebP encodings (SIC/AIC entropy), timed with PIL on all 16
# cores. Images = Keras' top-1 accuracy x 50,000.
#   model        grad/s  fwd/s  model s/img  WebP s/img  images  hours
#   DenseNet121    4467   9959    0.19        1.59       37.5k   18.5
#   DenseNet169    3753   8009    0.23        1.59       38.1k   19.2
#   DenseNet201    2960   6108    0.29        1.59       38.6k   20.1
#   InceptionV3    3636  10931    0.21        3.53       39.0k   40.5
#   MobileNetV2    9891  23611    0.08        1.59       35.6k   16.5
#   ResNet50V2     5631  15765    0.14        1.59       38.0k   18.2
#   ResNet101V2    3624   9750    0.22        1.59       38.6k   19.4
#   ResNet152V2    2560   6711    0.31        1.59       39.0k   20.6
#   VGG16          2600   9704    0.29        1.59       35.6k   18.5
#   VGG19          2302   8212    0.33        1.59       35.6k   18.9
#   Xception       2168   6686    0.36        3.53       39.5k   42.7
# About 250 box-hours for all 11 models. The WebP encodings (CPU) take ~90% of it: more
# cores per box shorten the run, more GPUs in one box do not. Use LIMIT for a partial
# table first, and more boxes (SHARD_OFFSET / SHARDS_TOTAL) to divide the time.
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
    python -m idgi_tf.bench --model "$model" --data imagenet --imagenet-dir "$IMAGENET_DIR" \
      --steps "$STEPS" ${LIMIT:+--limit "$LIMIT"} --devices all \
      --shard "$SHARD_OFFSET/$SHARDS_TOTAL" --out "$OUT/$model" --quiet
    python -m idgi_tf.bench report "$OUT/$model"
    continue
  fi
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
