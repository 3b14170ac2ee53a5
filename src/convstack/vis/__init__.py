"""Seeing inside a network: filters, feature maps, saliency, Grad-CAM, deconvnet, training plots, reports.

Everything reads the model from outside, through ``named_modules()`` and the module and
tensor hooks (``register_forward_hook``, ``register_full_backward_hook``,
``Tensor.register_hook``); no model has special code for it. Each function returns the
arrays it computed and, given ``path``, also draws them to a PNG file (matplotlib with
the Agg backend, imported only then; a dependency of convstack).

    >>> from convstack import vis                                       # doctest: +SKIP
    >>> vis.filter_grid(model.features[0], "filters.png")               # doctest: +SKIP
    >>> cam = vis.grad_cam(model, "features.3", image, path="cam.png")  # doctest: +SKIP
"""

from convstack.vis.attribution import grad_cam, overlay, saliency
from convstack.vis.deconv import deconvnet, guided_backprop
from convstack.vis.filters import GaborFit, filter_grid, fit_gabor, gabor_comparison
from convstack.vis.maps import activation_stats, feature_maps
from convstack.vis.report import write_report
from convstack.vis.training_plots import confusion_matrix_plot, misclassified_grid, training_curves

__all__ = [
    "filter_grid", "fit_gabor", "gabor_comparison", "GaborFit",
    "feature_maps", "activation_stats",
    "saliency", "grad_cam", "overlay",
    "guided_backprop", "deconvnet",
    "training_curves", "confusion_matrix_plot", "misclassified_grid",
    "write_report",
]
