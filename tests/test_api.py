"""The public surface: closed method tables, keyword-only rows, documented defaults, typed returns."""

import dataclasses
import json
import os
import subprocess
import sys
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
    assert set(methods.METHOD_NAMES) == {*methods.METHODS, "smoothgrad"}
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
    tables["smoothgrad"] = methods.SMOOTHGRAD_OPTIONS
    for name, options in tables.items():
        if options:
            assert f"{name}: ``" + ", ".join(f"{k}={v!r}" for k, v in options.items()) + "``" in doc, name
    assert "{method_options}" not in doc


def test_attribute_declares_its_return_types():
    overloads = typing.get_overloads(idgi_tf.attribute)
    returns = [typing.get_type_hints(function)["return"] for function in overloads]
    assert returns[0] is np.ndarray and typing.get_origin(returns[1]) is dict
    assert all(typing.get_origin(r) is tuple for r in returns[2:])


def test_old_module_paths_still_import_with_a_deprecation_warning():
    """One release of grace for code written against the flat layout (in a fresh interpreter, where
    nothing is imported yet)."""
    code = (
        "import warnings, json\n"
        "import idgi_tf\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    import idgi_tf.gradients, idgi_tf.methods, idgi_tf.convergence\n"
        "    from idgi_tf.occlusion import occlusion\n"
        "    from idgi_tf.integrate import integrate\n"
        "from idgi_tf.attribution import modified_gradients, methods, integrate as new_integrate\n"
        "print(json.dumps({'warnings': sorted(str(w.message).split(' ')[0] for w in caught\n"
        "                                     if issubclass(w.category, DeprecationWarning)),\n"
        "                  'same': idgi_tf.gradients is modified_gradients and idgi_tf.methods is methods\n"
        "                          and integrate is new_integrate.integrate}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out == {"warnings": ["idgi_tf.convergence", "idgi_tf.gradients", "idgi_tf.integrate", "idgi_tf.methods",
                                "idgi_tf.occlusion"], "same": True}


def test_the_attribution_core_is_its_own_package():
    assert idgi_tf.attribute is idgi_tf.attribution.attribute
    assert idgi_tf.paths is idgi_tf.attribution.paths and idgi_tf.rules is idgi_tf.attribution.rules
    assert methods.__name__ == "idgi_tf.attribution.methods"
