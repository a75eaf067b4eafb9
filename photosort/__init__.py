"""photosort: sort your photos into folders with CLIP, by typed categories or a few clicks."""

import os

# OpenMP threads that spin while waiting steal the cores the decode threads
# need; this must be set before torch is first imported to take effect.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
