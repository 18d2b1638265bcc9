"""Clusters: the provider-agnostic model and its providers (local processes, Docker, external DSNs)."""
