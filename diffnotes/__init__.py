"""diffnotes: the companion package of the diffusion-models textbook.

The package reads in the book's order, which is also the direction of its data flow; each stage imports only from
the stages above it (``tests/test_layout.py`` checks this, and that no module passes 300 lines)::

    foundations   runtime, checks, files, data, perfnotes,   profiles, argument checks, safe files, digits, records,
                  grading/ (versions, grader, execute)         course assignments and their autograder
    Gaussians     gaussians                                   chapter 1
    schedules     schedules                                   chapter 3
    forward       forward, mixtures, toy                      chapters 2 and 4
    posterior     posterior, posterior_grid                   chapter 10: the formulas every sampler uses
    networks      nets/ (embeddings, mlp, unet, architecture, exact, guidance)   chapters 5 and 6
    training      objective, checkpoints, training,           chapters 5 and 7
                  distributed (torchrun, DDP)
    samplers      samplers/ (timesteps, ddpm, ddim, gaussian_chain)              chapters 8 and 12
    evaluation    evaluation/ (likelihood, bound, exact_bound, statistics,      chapters 8, 9, 11, 12
                  classifier, quality, table, timing)
    shipped       pretrained, train_digits                    the trained digit model
    at scale      at_scale (beside pretrained)                chapter 16: Stable Diffusion's parts, counted
    plots         plotting/                                   every figure

Each public function names the book's equation it implements.
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
