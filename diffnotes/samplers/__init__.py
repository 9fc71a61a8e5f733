"""Samplers: from noise to data with a trained (or exact) noise predictor (chapters "Sampling" and "DDIM").

:mod:`~diffnotes.samplers.timesteps` chooses the timesteps a sampler visits; :mod:`~diffnotes.samplers.ddpm` is
Algorithm 2 (ancestral sampling) and :mod:`~diffnotes.samplers.ddim` the DDIM update, both of which take any
:class:`~diffnotes.nets.NoisePredictor`, an explicit timestep sequence, and may start from an intermediate x_t
(what img2img needs); :mod:`~diffnotes.samplers.gaussian_chain` checks Algorithm 2 on Gaussian data. Samplers import
the schedule, the posterior formulas and the network contract, and nothing that comes after them.
"""
