"""pytest plugin: apply ``MEANFIELD_MUTATION`` before collection (see :mod:`_mutants`)."""

import os


def pytest_configure(config):
    name = os.environ.get("MEANFIELD_MUTATION")
    if name:
        import _mutants

        _mutants.apply(name)
