"""Which domain memory a tau run was trained with, and whether it is loaded here.

A checkpoint records the Laplacian its run trained against (`config.json`'s ``domain`` entry,
written by `tauformer.train`): {"laplacian": "chain"} or {"laplacian": "domain", "name",
"fingerprint", ...}. The link to a loaded domain memory is by fingerprint, never by name or
path: a file renamed or moved still matches, a rebuilt one with other parameters does not.
"""

from __future__ import annotations

from dataclasses import dataclass

from tauformer.checkpoint import read_meta
from tauformer.errors import TauformerError

from .cache import content_key

CHAIN = "chain"
DOMAIN = "domain"


@dataclass(frozen=True)
class DomainLink:
    """The Laplacian a run was trained with.

    laplacian : "domain", "chain", or None (a dot run, or a checkpoint that records nothing)
    fingerprint / recorded_name : from the checkpoint (None unless laplacian is "domain")
    domain : the name of the loaded domain memory with that fingerprint, or None
    """

    run: str
    laplacian: str | None
    fingerprint: str | None = None
    recorded_name: str | None = None
    domain: str | None = None

    def matches(self, shown: str | None) -> bool:
        """Whether ``shown`` (a loaded domain memory's name) is the one the run was trained with."""
        return self.domain is not None and shown == self.domain


def recorded_domain(workspace, run: str, step: int | None = None) -> dict | None:
    """The checkpoint's ``domain`` record (JSON only, no weights read), cached per checkpoint."""
    ref = workspace.runs.ref(run, step)
    return workspace.cache.get_or_compute("results", content_key("domain-record", ref),
                                          lambda: read_meta(ref.path, history=False).domain)


def domain_with_fingerprint(workspace, fingerprint: str | None) -> str | None:
    """The first loaded domain memory whose fingerprint is ``fingerprint`` (unreadable ones skipped)."""
    if not fingerprint:
        return None
    for name in workspace.domains.names():
        memory, _ = workspace.domains.try_load(name)
        if memory is not None and memory.fingerprint == fingerprint:
            return name
    return None


def domain_link(workspace, run: str, step: int | None = None) -> DomainLink:
    """The run's recorded Laplacian and the loaded domain memory it names (see DomainLink).

    KeyError for an unknown run; a checkpoint whose config cannot be read links to nothing.
    """
    if workspace.runs.info(run).attention != "tau":
        return DomainLink(run, None)
    try:
        record = recorded_domain(workspace, run, step) or {}
    except (TauformerError, OSError):
        return DomainLink(run, None)
    kind = record.get("laplacian")
    if kind != DOMAIN:
        return DomainLink(run, CHAIN if kind == CHAIN else None)
    fingerprint = record.get("fingerprint")
    fingerprint = fingerprint if isinstance(fingerprint, str) else None
    name = record.get("name")
    return DomainLink(run, DOMAIN, fingerprint, name if isinstance(name, str) else None,
                      domain_with_fingerprint(workspace, fingerprint))
