"""``convstack visualize`` end to end on a tiny checkpoint written by the Trainer."""

import json

import numpy as np
import pytest
from tests.vis.patch_task import make_patch_data

from convstack import cli, data, optim
from convstack.cli import visualize_command
from convstack.cli.args import Parser
from convstack.cli.common import build_model
from convstack.train import Trainer


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A one-epoch run of a spec model on the patch task, its config as `convstack train` writes it."""
    out = tmp_path_factory.mktemp("run")
    images, labels, _ = make_patch_data(64, seed=5)
    config = {
        "model": "spec:conv4-pool-conv4",
        "model_options": {"num_classes": 2, "in_channels": 1, "input_size": 20},
        "dataset": "patches",
        "classes": ["plain", "patch"],
        "normalize": {"mean": [0.5], "std": [0.25]},
        "hyperparameters": {"epochs": 1, "batch_size": 32, "lr": 0.01},
    }
    model = build_model(config)
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.01), out_dir=out, progress=False, config=config)
    (out / "config.json").write_text(json.dumps(config))
    trainer.fit(data.DataLoader(data.TensorDataset(images, labels), batch_size=32), epochs=1)
    pil = pytest.importorskip("PIL.Image")
    picture = np.full((40, 40), 60, np.uint8)
    picture[10:18, 24:32] = 250  # resized to 20x20 by the command
    pil.fromarray(picture).save(out / "bright.png")
    return out


def visualize(*argv):
    """Parse and run ``visualize`` with the command's own parser (as ``convstack.cli`` registers it)."""
    parser = Parser(prog="convstack")
    visualize_command.add_parser(parser.add_subparsers(dest="command", parser_class=Parser))
    args = parser.parse_args(["visualize", *argv])
    return args.run(args)


@pytest.mark.parametrize(
    "what, layer, expected",
    [
        ("filters", None, ["filters.png", "gabor.png"]),
        ("maps", "3", ["bright-maps.png"]),
        ("saliency", None, ["bright-saliency.png"]),
        ("gradcam", None, ["bright-gradcam.png"]),
        ("guided", None, ["bright-guided.png"]),
        ("deconv", "4", ["bright-deconv.png"]),
    ],
)
def test_every_picture(run_dir, tmp_path, capsys, what, layer, expected):
    argv = [str(run_dir / "last.ckpt"), "--image", str(run_dir / "bright.png"), "--what", what, "--out", str(tmp_path)]
    assert visualize(*argv, *(["--layer", layer] if layer else [])) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(tmp_path / name) for name in expected]
    for name in expected:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_one_line_errors(run_dir, tmp_path):
    checkpoint = str(run_dir / "last.ckpt")
    with pytest.raises(ValueError, match=r"visualize: unknown layer name 'features.0'; valid layer names: 0, 1, 2"):
        visualize(checkpoint, "--what", "filters", "--layer", "features.0", "--out", str(tmp_path))
    with pytest.raises(ValueError, match=r"visualize: --what filters needs a Conv2d layer; '1' is ReLU"):
        visualize(checkpoint, "--what", "filters", "--layer", "1", "--out", str(tmp_path))
    with pytest.raises(ValueError, match=r"visualize: --what gradcam needs --image FILE"):
        visualize(checkpoint, "--what", "gradcam", "--out", str(tmp_path))
    with pytest.raises(ValueError, match=r"grad_cam: unknown layer name 'x'"):
        visualize(checkpoint, "--what", "gradcam", "--image", str(run_dir / "bright.png"), "--layer", "x")
    with pytest.raises(ValueError, match=r"saliency: invalid value for argument `target`: expected class indices in"):
        visualize(checkpoint, "--what", "saliency", "--image", str(run_dir / "bright.png"), "--target", "5")


@pytest.mark.skipif(visualize_command not in cli.COMMANDS, reason="`visualize` is not registered in convstack.cli yet")
def test_through_the_convstack_command(run_dir, tmp_path, capsys):
    checkpoint = str(run_dir / "best.ckpt")
    assert cli.main(["visualize", checkpoint, "--what", "filters", "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / "filters.png"), str(tmp_path / "gabor.png")]
    assert cli.main(["visualize", checkpoint, "--what", "filters", "--layer", "nope"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("convstack visualize: error: visualize: unknown layer name 'nope'")
    assert error.count("\n") == 1
