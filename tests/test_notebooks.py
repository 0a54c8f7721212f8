"""The tutorials run as a reader runs them: every cell of each notebook under docs/tutorials/ executes without
error in a fresh kernel (nbclient), on the offline data and weights the project installs."""

import os
import pathlib

import pytest

nbclient = pytest.importorskip("nbclient", reason="the test extra installs nbclient, nbformat and ipykernel")
import nbformat  # noqa: E402

from idgi_tf import data  # noqa: E402

TUTORIALS = pathlib.Path(__file__).resolve().parent.parent / "docs" / "tutorials"
NEEDS = {"explain-your-own-model.ipynb": data.FASHION_MNIST_DIR}  # Debian's dataset-fashion-mnist


def test_the_tutorials_are_the_three_the_docs_promise():
    assert sorted(path.name for path in TUTORIALS.glob("*.ipynb")) == [
        "any_model.ipynb", "explain-your-own-model.ipynb", "reproduce-the-paper.ipynb"]


def test_notebooks_are_stored_without_outputs():
    """Outputs would go stale and bloat diffs; the docs site shows the code and the tests run it."""
    for path in TUTORIALS.glob("*.ipynb"):
        notebook = nbformat.read(path, as_version=4)
        assert all(not cell.get("outputs") and cell.get("execution_count") is None
                   for cell in notebook.cells if cell.cell_type == "code"), path.name


@pytest.mark.parametrize("name", ["explain-your-own-model.ipynb", "reproduce-the-paper.ipynb", "any_model.ipynb"])
def test_tutorial_runs(name, tmp_path):
    needed = NEEDS.get(name)
    if needed and not os.path.isdir(needed):
        pytest.skip(f"{name} reads {needed} (apt-get install dataset-fashion-mnist)")
    notebook = nbformat.read(TUTORIALS / name, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [output for cell in notebook.cells for output in cell.get("outputs", [])
              if output.get("output_type") == "error"]
    assert not errors, errors
