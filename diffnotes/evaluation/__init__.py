"""Evaluation: how good a model is, and what it costs (chapters 8, 9, 11 and 12; the performance notes).

- :mod:`~diffnotes.evaluation.likelihood` (chapter 9) and :mod:`~diffnotes.evaluation.bound`,
  :mod:`~diffnotes.evaluation.exact_bound` (chapter 11): the variational bound, exact likelihoods, bits per dimension;
- :mod:`~diffnotes.evaluation.statistics`: two-sample statistics (MMD test, energy distance);
- :mod:`~diffnotes.evaluation.classifier` and :mod:`~diffnotes.evaluation.quality`: the offline digit classifier and
  the sample-quality protocol (Frechet distance, class coverage, copying);
- :mod:`~diffnotes.evaluation.table`: a sampler's step-count against quality table;
- :mod:`~diffnotes.evaluation.timing`: seconds and FLOPs per network evaluation.

Evaluation comes after the samplers in the package's order: it may call any of them, and nothing before it calls it.
"""
