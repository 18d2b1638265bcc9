"""Choose the provider from the settings and hand back a Cluster."""

from __future__ import annotations

from typing import Any

from .model import Cluster, Unsupported


def open_cluster(settings: Any) -> Cluster:
    """The session's cluster under test."""
    provider = settings.effective_provider
    if provider == "external":
        from .external import ExternalCluster

        return ExternalCluster(settings)
    if provider == "docker":
        from .docker import provision_docker

        return provision_docker(settings)
    from .local import provision_local

    return provision_local(settings)


def new_cluster(settings: Any, *, host_files: bool = False, **kw: Any) -> Cluster:
    """An extra cluster for a drill. Drills against an external target get a local one with the target's major;
    so does a drill that reads the cluster's files from this host (`host_files`: the PITR lab's WAL archive),
    which a container's volume does not offer."""
    provider = settings.effective_provider
    if provider == "docker" and not host_files:
        from .docker import provision_docker

        return provision_docker(settings, **kw)
    from .local import provision_local

    kw.setdefault("replicas", 0)
    kw.setdefault("pgbouncer", False)
    kw.setdefault("toxiproxy", False)
    try:
        return provision_local(settings, **kw)
    except Unsupported:
        raise
