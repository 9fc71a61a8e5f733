"""diffnotes: the companion package of the diffusion-models textbook.

One module per chapter of the book; each public function names the book's equation it implements.
Import order (foundations first): ``runtime`` -> ``gaussians`` -> ``schedules`` -> ``forward`` -> ...
"""

from diffnotes.runtime import PROFILES, Runtime, by_profile, get_device, get_profile, seed_everything, setup

__version__ = "0.1.0"

__all__ = [
    "PROFILES",
    "Runtime",
    "by_profile",
    "get_device",
    "get_profile",
    "seed_everything",
    "setup",
    "__version__",
]
