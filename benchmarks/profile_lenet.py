"""Profile a LeNet-5 training epoch on Fashion-MNIST and say what fraction of it is Python.

    python3 benchmarks/profile_lenet.py [--fraction 1.0] [--top 15] [--threads N] [--native]

See ``convstack.bench.profile_lenet`` for the three estimates and what each can see.
"""

from convstack.bench.profile_lenet import main

if __name__ == "__main__":
    raise SystemExit(main())
