"""Measure what one benchmark image costs on a GPU box, for the estimate in reproduce_all.sh.

The lent GPU machines of this project hold no TensorFlow (only PyTorch and JAX, and no
network), so idgi_tf itself cannot run there. This script measures the part of
``python -m idgi_tf.bench`` that dominates its cost with the same Keras Applications
models on Keras 3's JAX backend: the throughput of input-gradient passes (what IG, GIG
and BlurIG spend their time on) and of forward passes (what the metrics spend theirs
on), float32, random weights, native input size. It also times lossless WebP encoding
(SIC/AIC's information level) on one core and across all cores with PIL.

The numbers are the model-side cost a GPU box can reach, not a run of idgi_tf: TF's
kernels differ from XLA-on-JAX's. reproduce_all.sh states them as such.

Run (on the GPU box): KERAS_BACKEND=jax python benchmarks/gpu_model_passes.py --out FILE
"""
import argparse
import io
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

MODELS = {
    "DenseNet121": 224, "DenseNet169": 224, "DenseNet201": 224, "InceptionV3": 299,
    "MobileNetV2": 224, "ResNet50V2": 224, "ResNet101V2": 224, "ResNet152V2": 224,
    "VGG16": 224, "VGG19": 224, "Xception": 299,
}


def best_time(fn, repeats):
    """Least wall time of ``repeats`` calls of ``fn`` (after one warm-up call)."""
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return min(times)


def model_rates(name, size, batch, repeats):
    """Images per second of gradient passes and of forward passes for one model."""
    model = getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3))
    params = [v.value for v in model.trainable_variables]
    state = [v.value for v in model.non_trainable_variables]
    images = jnp.asarray(np.random.default_rng(0).uniform(0, 255, (batch, size, size, 3)),
                         jnp.float32)

    def probabilities(x):
        out, _ = model.stateless_call(params, state, x / 127.5 - 1.0, training=False)
        return out

    forward = jax.jit(probabilities)
    gradient = jax.jit(jax.grad(lambda x: jnp.sum(probabilities(x)[:, 0])))
    return {
        "model": name, "size": size, "batch": batch,
        "grad_images_per_s": batch / best_time(lambda: gradient(images), repeats),
        "forward_images_per_s": batch / best_time(lambda: forward(images), repeats),
    }


def webp_rates(size, images=64):
    """Lossless WebP encodings per second (quality 100) on one core and on all cores."""
    rng = np.random.default_rng(0)
    smooth = np.cumsum(np.cumsum(rng.normal(size=(size, size, 3)), 0), 1)
    pixels = np.uint8(255 * (smooth - smooth.min()) / np.ptp(smooth))

    def encode(_):
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="webp", lossless=True, quality=100)
        return buffer.tell()

    start = time.perf_counter()
    for i in range(8):
        encode(i)
    one_core = 8 / (time.perf_counter() - start)
    workers = os.cpu_count()
    with ThreadPoolExecutor(workers) as pool:
        start = time.perf_counter()
        list(pool.map(encode, range(images)))
        all_cores = images / (time.perf_counter() - start)
    return {"size": size, "one_core_per_s": one_core, "all_cores_per_s": all_cores,
            "cores": workers}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()
    report = {"device": str(jax.devices()[0]), "keras": keras.__version__,
              "jax": jax.__version__, "webp": [webp_rates(224), webp_rates(299)],
              "models": []}
    for name in args.models.split(","):
        row = model_rates(name, MODELS[name], args.batch, args.repeats)
        print(json.dumps(row), flush=True)
        report["models"].append(row)
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
