"""``convstack filter IMAGE --kernel SPEC --out FILE``: classical filtering of a PNG/JPEG image.

Gray images stay gray, anything else is filtered as RGB, each channel on its own. The
output is saved as uint8: blur, sharpen, shift and identity outputs are clipped to
0..255; signed edge responses are made visible, ``--scale auto`` picking per kernel:
absolute value scaled so the strongest is white (Sobel, Prewitt, Laplacian, Gabor) or
offset by 128 so that flat regions are mid-grey (emboss).
"""

from __future__ import annotations

import sys

import numpy

from convstack.cli.common import refuse_overwriting
from convstack.image import filtering
from convstack.image.io import SCALES, read_image, to_uint8, write_image
from convstack.image.kernels import KERNEL_NAMES, get_kernel

# How each kernel's output is mapped to 0..255 under --scale auto; kernels not named clip.
AUTO_SCALES = {
    "sobel_x": "abs",
    "sobel_y": "abs",
    "prewitt_x": "abs",
    "prewitt_y": "abs",
    "laplacian": "abs",
    "gabor": "abs",
    "emboss": "offset",
}


def add_parser(subparsers):
    p = subparsers.add_parser("filter", help="filter a PNG/JPEG image with a named kernel (blur, sharpen, edges ...)")
    p.add_argument("image", metavar="IMAGE", help="PNG or JPEG file, gray or colour")
    p.add_argument(
        "--kernel",
        required=True,
        metavar="SPEC",
        help=f"NAME or NAME:ARGS, e.g. box:5, gaussian:2, shift:1,0, gabor:0,2,6; names: {', '.join(KERNEL_NAMES)}",
    )
    p.add_argument("--out", required=True, metavar="FILE", help="output file; .png or .jpg picks the format")
    p.add_argument("--mode", choices=filtering.MODES, default="same", help="output size (default: same)")
    p.add_argument(
        "--boundary",
        choices=filtering.BOUNDARIES,
        default="reflect",
        help="values beyond the border (default: reflect, which leaves no dark frame)",
    )
    p.add_argument("--convolve", action="store_true", help="true convolution (flipped kernel) instead of correlation")
    p.add_argument(
        "--scale",
        choices=("auto",) + SCALES,
        default="auto",
        help="map to 0..255: clip, abs (scaled to the maximum) or offset (+128); auto picks per kernel",
    )
    p.set_defaults(run=run)


def run(args) -> int:
    refuse_overwriting(args.out, "--out", image=args.image)
    try:
        kernel = get_kernel(args.kernel)  # ValueError (one line) for an unknown or malformed spec
    except MemoryError as error:  # a kernel that cannot fit, refused before it is allocated
        raise MemoryError(f"--kernel {args.kernel}: {error}") from None
    name = args.kernel.strip().partition(":")[0]
    scale = AUTO_SCALES.get(name, "clip") if args.scale == "auto" else args.scale
    try:
        image = read_image(args.image)
    except ImportError as error:  # Pillow missing: say so in one line, as for any user-facing error
        print(f"convstack filter: error: {error}", file=sys.stderr)
        return 2
    operation = filtering.convolve if args.convolve else filtering.correlate
    # float32 is exact for 0..255 inputs and halves the memory of the convolution's columns
    result = operation(image.astype(numpy.float32), kernel, mode=args.mode, boundary=args.boundary)
    write_image(args.out, to_uint8(result, scale))
    height, width = result.shape[:2]
    print(
        f"{args.out}: {width}x{height} {'RGB' if result.ndim == 3 else 'gray'}, kernel {args.kernel} "
        f"({kernel.shape[0]}x{kernel.shape[1]}), mode {args.mode}, boundary {args.boundary}, scale {scale}"
    )
    return 0
