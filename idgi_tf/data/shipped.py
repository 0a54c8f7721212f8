"""Files shipped with the package in ``idgi_tf/_data`` (see its README for sources and licences)."""

from importlib import resources


def package_file(name: str):
    """The shipped file ``idgi_tf/_data/<name>`` (a ``Traversable``: ``read_text()``, ``open("rb")``)."""
    return resources.files("idgi_tf").joinpath("_data", name)
