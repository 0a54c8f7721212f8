"""Pictures of attributions and metric curves, on matplotlib.

Arrays (cheap, for TensorBoard and for pictures you compose yourself):

* :func:`heatmap`: a map as RGB uint8, PAIR's grayscale or diverging scaling
  (:func:`scaled_map`) coloured by any matplotlib colormap, exactly.
* :func:`overlay`: the heatmap blended onto the photo.

Figures (``matplotlib.figure.Figure``: shown inline in a notebook, restyled,
saved as PNG, SVG or PDF; each takes ``ax=``/``axes=`` to draw into yours):

* :func:`plot_attributions`: images and maps in a grid, e.g. plain / +IDGI
  columns, with titles and an optional colorbar;
* :func:`figure3`: the IDGI paper's Figure 3 for one image (computes the maps);
* :func:`plot_curves`: lines with a legend; :func:`plot_metric_curves`: the
  curves of insertion/deletion, SIC/AIC and Sensitivity-n results;
  :func:`plot_binned_curves`: points pooled over images, binned to what their
  number supports, with a band (SIC/AIC); :func:`plot_spectra`: power spectra
  (normalised, with the cutoff marked); :func:`plot_cutoff_search`: the FORGrad
  cutoff search; :func:`figure_title`: "what: model, N images";
* :func:`plot_tokens`: text with each token on a box coloured by its score
  (Captum's ``visualize_text``); :func:`plot_features`: the largest |scores|
  as horizontal bars (SHAP's bar plot);
* :func:`save`: a figure or an array to PNG/SVG/PDF; :func:`to_array`: a
  figure as RGB uint8.

Example (a notebook cell)::

    maps = idgi_tf.attribute(model, x, y, "ig", rule=("plain", "idgi"))
    fig = viz.plot_attributions(x, {"IG": maps["plain"], "IG+IDGI": maps["idgi"]}, colorbar=True)
    fig  # shown inline; viz.save(fig, "ig.pdf") writes it
"""

from .figure import figure3
from .maps import as_rgb8, colormap, heatmap, overlay, scaled_map
from .plots import (
    binned_band,
    figure_title,
    plot_attributions,
    plot_binned_curves,
    plot_curves,
    plot_cutoff_search,
    plot_metric_curves,
    plot_spectra,
    save,
    scale_note,
    to_array,
)
from .scores import plot_features, plot_tokens

__all__ = [
    "as_rgb8", "binned_band", "colormap", "figure3", "figure_title", "heatmap", "overlay", "plot_attributions",
    "plot_binned_curves", "plot_curves", "plot_cutoff_search", "plot_features", "plot_metric_curves", "plot_spectra",
    "plot_tokens", "save",
    "scale_note", "scaled_map", "to_array",
]
