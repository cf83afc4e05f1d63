"""Dash workbench for exploring Tauformer checkpoints and domain memories.

``figures``, ``theme`` and ``export`` are pure plotly and never import torch or
``tauformer``; only ``workbench.data`` talks to the model package (views and commands take its
error types from ``workbench.data.errors``). ``python -m workbench {export, bench, precompute}``
runs the commands besides the app (``workbench/__main__.py``); tests/test_layering.py checks
these rules and that the package has no import cycles.
"""
