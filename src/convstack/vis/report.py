"""A run's report: one self-contained HTML page (inline CSS, PNGs as base64 data URIs).

The page opens offline and can be mailed as one file: it references no external file,
font, script or style sheet.
"""

from __future__ import annotations

import base64
import html
import io
import time
import warnings
from pathlib import Path

import numpy

from convstack.atomic import write_text
from convstack.autograd import no_grad
from convstack.models.summary import summary
from convstack.tensor import Tensor
from convstack.vis._model import as_batch, conv_layer_names, default_cam_layer, find_layer, probing
from convstack.vis._plot import to_numpy
from convstack.vis.attribution import grad_cam, overlay
from convstack.vis.filters import filter_grid, gabor_comparison
from convstack.vis.training_plots import confusion_matrix_plot, misclassified_grid, training_curves

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; line-height: 1.4; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; border-bottom: 1px solid #ddd; margin-top: 1.8em; }
.sub { color: #666; } table { border-collapse: collapse; margin: 0.5em 0; }
td, th { border: 1px solid #ddd; padding: 0.25em 0.7em; text-align: left; font-size: 0.9em; }
th { background: #f4f4f4; } img { max-width: 100%; } pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto;
font-size: 0.8em; } .cards { display: flex; flex-wrap: wrap; gap: 1em; } .card { background: #f4f7fb;
border-radius: 6px; padding: 0.6em 1em; } .card b { display: block; font-size: 1.4em; } .note { color: #888; }
"""


def _png(draw) -> str:
    """Run ``draw(file_object)`` and return an <img> tag with the PNG inlined as a data URI."""
    buffer = io.BytesIO()
    draw(buffer)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img src="data:image/png;base64,{encoded}" alt="">'


def _table(rows) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def write_report(
    run_dir,
    model,
    config: dict,
    history,
    results: dict | None = None,
    sample_images=None,
    display_images=None,
    sample_targets=None,
    class_names=None,
    metrics: dict | None = None,
    max_samples: int = 4,
) -> Path:
    """Write ``run_dir/report.html``: curves, confusion matrix, filters, Grad-CAMs, summary, settings.

    Args:
        run_dir: the run folder (created if needed).
        model: the trained model.
        config: the run's configuration (``model``, ``model_options``, ``dataset``,
            ``classes``, ``normalize``, ``hyperparameters`` as ``convstack train`` writes it).
        history: the trainer's history (list of per-epoch dicts).
        results: ``convstack.train.evaluate`` output (``loss``, ``acc``, ``top5``, ``confusion``,
            ``predictions``, ``targets``), or None.
        sample_images: a few test inputs as the model takes them, (N, C, H, W) floats, for
            the Grad-CAMs and the misclassified examples (None: those sections are left out).
        display_images: the same images for display (e.g. raw uint8 (N, H, W) or (N, H, W, C));
            default: the inputs, rescaled.
        sample_targets: the true classes of ``sample_images`` (N,), for labels and mistakes.
        class_names: a name per class (default ``config['classes']``).
        metrics: extra numbers to show, e.g. the ``results.json`` summary (times, seed).
        max_samples: how many Grad-CAMs to draw.

    Returns:
        The path of the report.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config = dict(config or {})
    names = list(class_names if class_names is not None else config.get("classes") or [])
    title = f"{config.get('model', type(model).__name__)} on {config.get('dataset', 'data')}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>convstack report: {html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="sub">convstack training report, written {html.escape(time.strftime("%Y-%m-%d %H:%M:%S"))}</p>',
    ]
    parts += _metrics_section(history, results, metrics)
    if history:
        parts += ["<h2>Training curves</h2>", _png(lambda f: training_curves(history, f))]
    if results is not None and results.get("confusion") is not None:
        confusion = numpy.asarray(to_numpy(results["confusion"]))
        labels = names if len(names) == len(confusion) else None
        parts += ["<h2>Confusion matrix</h2>", _png(lambda f: confusion_matrix_plot(confusion, labels, f))]
    parts += _filter_section(model)
    if sample_images is not None:
        parts += _sample_sections(model, sample_images, display_images, sample_targets, names, max_samples)
    input_shape = _input_shape(config, sample_images)
    if input_shape is not None:
        parts += ["<h2>Model</h2>", f"<pre>{html.escape(summary(model, input_shape))}</pre>"]
    parts += ["<h2>Configuration</h2>", _table(_config_rows(config)), "</body></html>"]
    path = run_dir / "report.html"
    return write_text(path, "\n".join(parts))


def _metrics_section(history, results, metrics) -> list:
    cards = []
    if results is not None:
        for key, label in (("acc", "test accuracy"), ("top5", "test top-5"), ("loss", "test loss")):
            if key in results:
                value = results[key]
                text = f"{value:.2%}" if key != "loss" else f"{value:.4f}"
                cards.append(f'<div class="card">{label}<b>{text}</b></div>')
    if history:
        last = history[-1]
        cards.append(f'<div class="card">epochs<b>{len(history)}</b></div>')
        seconds = sum(float(row.get("time", 0.0)) for row in history)
        if seconds:
            cards.append(f'<div class="card">training time<b>{seconds:.1f} s</b></div>')
        if "images_per_s" in last:
            cards.append(f'<div class="card">throughput<b>{float(last["images_per_s"]):,.0f} img/s</b></div>')
    out = ["<h2>Results</h2>", f'<div class="cards">{"".join(cards)}</div>'] if cards else []
    if metrics:
        out.append(_table(sorted(metrics.items())))
    if history:
        keys = [k for k in ("epoch", "loss", "acc", "val_loss", "val_acc", "lr", "time") if k in history[-1]]
        header = "".join(f"<th>{k}</th>" for k in keys)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_fmt(row.get(k, '')))}</td>" for k in keys) + "</tr>" for row in history
        )
        out.append(f"<details><summary>per-epoch history</summary><table><tr>{header}</tr>{body}</table></details>")
    return out


def _filter_section(model) -> list:
    convs = conv_layer_names(model)
    if not convs:
        return ["<h2>First-layer filters</h2>", '<p class="note">The model has no Conv2d layer.</p>']
    layer = find_layer(model, convs[0], "write_report")
    out = [f"<h2>First-layer filters ({html.escape(convs[0])})</h2>", _png(lambda f: filter_grid(layer, f))]
    if layer.weight.shape[1] in (1, 3) and min(layer.weight.shape[2:]) >= 3:
        fits = []
        out.append(_png(lambda f: fits.extend(gabor_comparison(layer, f, max_filters=16))))
        mean_r2 = float(numpy.mean([fit.r2 for fit in fits]))
        out.append(f'<p class="sub">Nearest Gabor functions: mean r² = {mean_r2:.2f} over {len(fits)} filters.</p>')
    return out


def _sample_sections(model, sample_images, display_images, sample_targets, names, max_samples) -> list:
    batch, _ = as_batch(model, sample_images, "write_report")
    shown = to_numpy(display_images) if display_images is not None else batch
    with probing(model), no_grad():
        scores = to_numpy(model(Tensor(batch)).data)
    if scores.ndim != 2:
        return [
            "<h2>Sample images</h2>",
            f'<p class="note">Grad-CAM and mistakes need class scores (N, K); the model gives shape '
            f"{html.escape(str(scores.shape))}.</p>",
        ]
    predictions = scores.argmax(axis=1)

    def label(index) -> str:
        return names[index] if 0 <= index < len(names) else str(index)

    out = []
    convs = conv_layer_names(model)
    if convs:
        count = min(max_samples, len(batch))
        layer = default_cam_layer(model, batch, "write_report")
        with warnings.catch_warnings():  # an empty map shows as such in the report
            warnings.simplefilter("ignore", UserWarning)
            cams = grad_cam(model, layer, batch[:count])
        out.append(f"<h2>Grad-CAM ({html.escape(layer)}, predicted class)</h2>")
        for index in range(count):
            caption = f"predicted {label(int(predictions[index]))}"
            if sample_targets is not None:
                caption += f", true {label(int(to_numpy(sample_targets)[index]))}"
            out.append(_png(lambda f, i=index, c=caption: overlay(shown[i], cams[i], f, title=c)))
    if sample_targets is not None:
        targets = to_numpy(sample_targets)
        out.append(f"<h2>Misclassified among {len(batch)} sample images</h2>")
        out.append(_png(lambda f: misclassified_grid(shown, predictions, targets, names or None, f, max_images=16)))
    return out


def _input_shape(config, sample_images):
    if sample_images is not None:
        return tuple(to_numpy(sample_images).shape[1:])
    options = config.get("model_options") or {}
    if "in_channels" in options and "input_size" in options:
        return (options["in_channels"], options["input_size"], options["input_size"])
    return None


def _config_rows(config) -> list:
    rows = [(key, config[key]) for key in ("model", "dataset") if key in config]
    rows += [(f"model {key}", value) for key, value in (config.get("model_options") or {}).items()]
    rows += list((config.get("hyperparameters") or {}).items())
    normalize = config.get("normalize") or {}
    rows += [(f"normalize {key}", value) for key, value in normalize.items()]
    if config.get("classes"):
        rows.append(("classes", config["classes"]))
    return rows
