"""What the benchmark tests share: one benchmark's parsed arguments, a silent log, one thread."""

import argparse

import pytest

from tauformer.bench.common import torch_threads


@pytest.fixture(autouse=True)
def one_thread():
    """Small ops on a loaded machine wait on OpenMP threads; one thread keeps these tests quick.
    Autouse in every module that imports it."""
    with torch_threads(1):
        yield


def parse(module, argv):
    """``argv`` parsed by the arguments benchmark ``module`` adds."""
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return parser.parse_args(argv)


def quiet(*args, **kwargs):
    """A log that prints nothing."""
