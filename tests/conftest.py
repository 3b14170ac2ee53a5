import numpy as np
import pytest

import convstack as cs


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same random state."""
    cs.manual_seed(0)
    np.random.seed(0)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
