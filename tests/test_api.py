"""The public surface: closed method tables, keyword-only rows, documented defaults, typed returns."""

import dataclasses
import importlib
import typing

import numpy as np
import pytest

import idgi_tf
from idgi_tf.attribution import methods, rules
from idgi_tf.attribution.modified_gradients import MODIFIED_GRADIENT_METHODS


def test_the_tables_are_closed():
    with pytest.raises(TypeError):
        methods.METHODS["mine"] = methods.METHODS["ig"]
    with pytest.raises(TypeError):
        rules.RULES["half"] = rules.RULES["plain"]
    assert set(methods.PATH_INTEGRALS) == {"ig", "gig", "blurig"}
    assert set(MODIFIED_GRADIENT_METHODS) == {"elrp", "deeplift"}
    assert not set(MODIFIED_GRADIENT_METHODS) & set(rules.RULES)  # methods and step rules no longer share a word


def test_method_rows_are_keyword_only():
    ig = methods.METHODS["ig"]
    with pytest.raises(TypeError):
        methods.Method(*(getattr(ig, field.name) for field in dataclasses.fields(ig)))


def test_the_docstring_lists_every_option_default_from_the_tables():
    doc = " ".join(idgi_tf.attribute.__doc__.split())
    tables = {name: method.options for name, method in methods.METHODS.items()}
    for name, options in tables.items():
        if options:
            assert f"{name}: ``" + ", ".join(f"{k}={v!r}" for k, v in options.items()) + "``" in doc, name
    assert "{method_options}" not in doc


def test_attribute_declares_its_return_types():
    overloads = typing.get_overloads(idgi_tf.attribute)
    returns = [typing.get_type_hints(function)["return"] for function in overloads]
    assert returns[0] is np.ndarray and typing.get_origin(returns[1]) is dict
    assert all(typing.get_origin(r) is tuple for r in returns[2:])


def test_the_attribution_core_is_its_own_package():
    assert idgi_tf.attribute is idgi_tf.attribution.attribute
    assert methods.__name__ == "idgi_tf.attribution.methods"


@pytest.mark.parametrize("name", ["convergence", "gradients", "integrate", "methods", "occlusion", "paths", "rise",
                                  "rules", "smoothgrad"])
def test_no_aliases_of_the_attribution_modules(name):
    """One place per module: ``idgi_tf.attribution.<name>`` (the flat names were never released)."""
    assert not hasattr(idgi_tf, name)
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(f"idgi_tf.{name}")
