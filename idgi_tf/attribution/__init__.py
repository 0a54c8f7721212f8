"""The attribution core: a path times a step rule, integrated by one compiled loop, and the other methods.

* :mod:`.paths` (straight, guided, blur, one-point) and :mod:`.rules` (plain, IDGI): pure tensor code;
* :mod:`.integrate`: the compiled Riemann loop; :mod:`.convergence`: completeness gaps, ``steps="auto"``;
* :mod:`.modified_gradients` (epsilon-LRP, DeepLIFT), :mod:`.occlusion`, :mod:`.rise`, :mod:`.smoothgrad`;
* :mod:`.methods`: the method table and :func:`attribute`, the one entry point (``idgi_tf.attribute``).

Conventions and equations: docs/attribution.md.
"""

from . import convergence, integrate, methods, modified_gradients, occlusion, paths, rise, rules, smoothgrad
from .methods import METHODS, attribute, explained_output, path_start, smoothed

__all__ = ["METHODS", "attribute", "convergence", "explained_output", "integrate", "methods", "modified_gradients",
           "occlusion", "path_start", "paths", "rise", "rules", "smoothed", "smoothgrad"]
