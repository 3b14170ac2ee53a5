"""The live page: watch training in the browser, from the run folders alone.

``LiveRecorder`` (a Trainer callback) writes step and epoch metrics and per-epoch
pictures into ``RUN_DIR/live/``; ``DashboardServer`` serves a page over one or more run
folders, live or finished, updated by server-sent events. ``convstack train --live`` uses
both; ``convstack dashboard RUN_DIR...`` the server alone. The page's script and style
sheet ship inside the package (``static/``): nothing is fetched from elsewhere.
"""

from convstack.dashboard.png import encode_png
from convstack.dashboard.recorder import LiveRecorder
from convstack.dashboard.runs import RunFolder, RunReader
from convstack.dashboard.server import DEFAULT_HOST, DEFAULT_PORT, DashboardExposedWarning, DashboardServer

__all__ = [
    "LiveRecorder",
    "DashboardServer",
    "DashboardExposedWarning",
    "RunFolder",
    "RunReader",
    "encode_png",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
]
