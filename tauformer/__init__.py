"""Tauformer: a GPT whose attention compares taumode scalars (lambda) instead of q.k.

See SPEC in the README for the math. The package never imports dash or plotly.
"""

__version__ = "0.1.0"
