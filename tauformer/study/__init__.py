"""Does the domain memory matter? Matched training runs that differ in one thing, and their statistics.

`plan` lays a study out (variants x seeds, each a run directory under DIR/runs/<variant>-s<seed>,
control Laplacians written as domain-memory files), `runner` trains what is not done yet (one
process, several processes on several devices, or under torchrun), `summary` turns the runs'
histories into DIR/summary.json and DIR/summary.csv, `cli` is `python -m tauformer study`.

Importing this package (and `plan`, `summary`) does not import torch; `runner` does.
"""

from .plan import REFERENCE, VARIANTS, RunPlan, parse_run_name, plan_study, run_name
from .summary import summarise_study, write_summary

__all__ = ["REFERENCE", "VARIANTS", "RunPlan", "parse_run_name", "plan_study", "run_name", "summarise_study",
           "write_summary"]
