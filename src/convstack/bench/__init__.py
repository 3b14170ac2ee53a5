"""``convstack bench``: convstack raced against PyTorch, side by side, in the same run.

Each workload (``convstack.bench.workloads``: the per-layer convolutions, pooling and batch
norm rows, and the whole models) is set up once per framework, warmed up, then timed
*interleaved*: convstack rep, PyTorch rep, convstack rep, ... so that load from other processes
falls on both alike. A row reports each framework's median, its interquartile range, and the
ratio of the medians convstack / PyTorch (lower is better); the table ends with the geometric
mean of the per-layer ratios and the peak memory of a ResNet-20 training step, each framework
measured in a fresh subprocess (``convstack.bench.memory``). PyTorch is optional: without it
the table has convstack's columns only. NumPy's OpenBLAS and PyTorch use the same number of
threads (``convstack.bench.threads``).

Modules: ``runner`` (timing, interleaving, statistics, table, JSON), ``layer_workloads``,
``model_workloads``, ``workloads`` (the list), ``twins`` (PyTorch twins of the models),
``memory``, ``threads``, ``suite`` (one run), ``profile_lenet`` (how much of an epoch is Python).

JSON schema ``convstack-bench/1`` (``convstack bench --json FILE``)::

    {
      "schema": "convstack-bench/1",
      "created": "2025-01-31T12:00:00+0000",
      "machine": {"platform", "processor", "python", "numpy", "torch" (version or null),
                  "torch_threads", "cores_available", "threads",
                  "blas": {"library", "threads", "environment", "set_by_bench"},
                  "lenet_data": "60000 images from /usr/share/datasets/fashion-mnist" (when run)},
      "settings": {"filter", "repeat", "warmup", "quick", "threads", "memory", "torch"},
      "results": [{
          "name": "conv2d resnet 16-16 k3p1 32x32 b128 fwd",
          "group": "layer" | "model",
          "description": "what is timed, with shapes",
          "note": "",
          "convstack": {"median_s", "q1_s", "q3_s", "min_s", "max_s", "count", "times_s": [...]} | null,
          "pytorch": {... the same ...} | null,
          "ratio": convstack median / pytorch median | null,
          "errors": {"convstack" | "pytorch": "one-line error"}
      }],
      "memory": [{"name", "convstack_bytes", "pytorch_bytes", "ratio",
                  "convstack_detail"/"pytorch_detail": {"baseline_bytes", "peak_bytes", "growth_bytes",
                                                        "hwm_reset", "steps"} | {"error"}}],
      "summary": {"geomean_layer_ratio", "layer_rows_with_ratio", "geomean_conv_ratio", "conv_rows_with_ratio"}
    }

Times are in seconds. A framework whose set-up or a rep raised has null stats and its error
under ``errors``; the others run on.
"""
