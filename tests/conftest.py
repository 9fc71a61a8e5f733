"""Shared test settings."""

import torch

# The tests run small tensors, for which one thread is fastest; it also keeps a test run from fighting other
# processes for the cores (two OpenMP thread pools on two busy cores slowed these tests fifteenfold).
torch.set_num_threads(1)
