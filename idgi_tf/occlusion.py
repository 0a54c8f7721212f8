"""Deprecated alias of :mod:`idgi_tf.attribution.occlusion` (moved there); it goes in the next release."""

import sys
import warnings

from .attribution import occlusion as _moved

warnings.warn(f"idgi_tf.occlusion moved to {_moved.__name__}; import it from there (this alias goes in the "
              "next release)", DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
