"""Dash workbench for exploring Tauformer checkpoints and domain memories.

``figures``, ``theme`` and ``export`` are pure plotly and never import torch or
``tauformer``; only ``workbench.data`` talks to the model package.
"""
