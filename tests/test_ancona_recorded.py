"""The README's "Ancona et al.: text and ImageNet" findings, number by number, against the recorded runs.

Each number is formatted from the run's files (benchmarks/ancona_text/results.json and
benchmarks/ancona_imagenet/results.json, written by the scripts with their defaults) and must appear in
the README's section as written, so a README number that drifts from its run fails, and so does a rerun
whose numbers no longer say what the README says.
"""

import json
import os
import re

import numpy as np
import pytest

ROOT = os.path.join(os.path.dirname(__file__), os.pardir)
GRADIENT_METHODS = ("Gradient*Input", "epsilon-LRP", "DeepLIFT (Rescale)", "IG", "IG+IDGI")


def record(folder: str) -> dict:
    with open(os.path.join(ROOT, "benchmarks", folder, "results.json")) as handle:
        return json.load(handle)


def curves(run: dict) -> dict:
    """{name: array} or {model: {name: array}}, as the run's ``curves``."""
    def arrays(by_method):
        return {name: np.array(values) for name, values in by_method.items()}
    first = next(iter(run["curves"].values()))
    return arrays(run["curves"]) if isinstance(first, list) else {m: arrays(c) for m, c in run["curves"].items()}


@pytest.fixture(scope="module")
def section() -> str:
    with open(os.path.join(ROOT, "README.md")) as handle:
        readme = handle.read()
    start = readme.index("## Ancona et al.: text and ImageNet")
    end = readme.find("\n## ", start + 1)
    return readme[start:end]


def ceiling(value: float, digits: int) -> str:
    """An upper bound stated with ``digits`` decimals must hold: round up, not to the nearest."""
    return f"{np.ceil(value * 10**digits) / 10**digits:.{digits}f}"


def says(section: str, phrase: str) -> None:
    """``phrase`` appears in the section, not as the start of a longer number ("n = 10" is not "n = 100")."""
    assert re.search(re.escape(phrase) + r"(?!\d|\.\d)", section), f"the README's Ancona section should say {phrase!r}"


def test_the_text_findings_are_those_of_the_recorded_run(section):
    run = record("ancona_text")
    cnn, lstm = curves(run)["cnn"], curves(run)["lstm"]
    n_last = run["ns"][-1]
    assert np.abs(cnn["epsilon-LRP"] - cnn["Gradient*Input"]).max() < 2e-5
    says(section, "curves within 2e-5")
    says(section, f"|r| ≤ {ceiling(np.abs(lstm['epsilon-LRP']).max(), 3)}")
    assert np.abs(cnn["DeepLIFT (Rescale)"] - cnn["IG"]).max() < 4e-5
    says(section, "within 4e-5")
    says(section, f"{lstm['DeepLIFT (Rescale)'][-1]:.2f} vs {lstm['IG'][-1]:.2f} at n = {n_last}")
    assert cnn["Occlusion-1"][0] == pytest.approx(1.0, abs=1e-6) and lstm["Occlusion-1"][0] == pytest.approx(1.0)
    says(section, f"{cnn['Occlusion-1'][0]:.2f} on both text models")
    says(section, f"IG {cnn['IG'][-1]:.3f} vs {cnn['Occlusion-1'][-1]:.3f} at n = {n_last}")
    idgi = [f"{values.min():.2f}–{values.max():.2f}" for values in (cnn["IG+IDGI"], lstm["IG+IDGI"])]
    says(section, f"{idgi[0]} on the CNN, {idgi[1]} on the LSTM")
    lowest = {model: min(by_method, key=lambda name: by_method[name].mean()) for model, by_method in
              (("cnn", cnn), ("lstm", {k: v for k, v in lstm.items() if k != "epsilon-LRP"}))}
    assert lowest == {"cnn": "IG+IDGI", "lstm": "IG+IDGI"}  # "lowest of the working methods"


def test_the_imagenet_findings_are_those_of_the_recorded_run(section):
    run = record("ancona_imagenet")
    by_method, ns = curves(run), run["ns"]
    occlusion = f"Occlusion-{run['patch']}"
    assert run["skipped"] == {} and set(by_method) == {*GRADIENT_METHODS, occlusion}
    says(section, f"{run['subsets']} subsets per n on {len(run['images'])} photos")
    says(section, f"maps correlate {run['agreement']['epsilon-LRP vs Gradient*Input']['mean_correlation']:.2f}")
    says(section, f"maps correlate {run['agreement']['DeepLIFT (Rescale) vs IG']['mean_correlation']:.2f}")
    gradient = max(np.abs(by_method[name]).max() for name in GRADIENT_METHODS)
    says(section, f"|r| ≤ {ceiling(gradient, 2)}")
    best = int(np.argmax(by_method[occlusion]))
    assert by_method[occlusion][best] > gradient
    says(section, f"{occlusion} reaches {by_method[occlusion][best]:.2f} at n = {ns[best]}")
