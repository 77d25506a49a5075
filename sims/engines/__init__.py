"""Simulation engines, one per kind of dynamics (not per model).

* :mod:`sims.engines.amp` -- iterated maps (approximate message passing).
"""
