"""Simulation engines, one per kind of dynamics (not per model).

* :mod:`~meanfield.sims.engines.amp`, :mod:`~meanfield.sims.engines.amp_rank` --
  iterated maps (approximate message passing; scalar and vector entries).
* :mod:`~meanfield.sims.engines.network` -- network SDE/DDE (balanced rate and
  spiking networks: Euler--Maruyama, delay ring buffers, low-rank feedback in
  O(N), dense disorder as a matrix--matrix product over trials).
* :mod:`~meanfield.sims.engines.learning` -- learning dynamics (many small
  networks trained at once: student--teacher curl descent, feedback alignment).

A model names its simulator in its declaration (``Model.simulator``); an engine
never tests a model's name.
"""
