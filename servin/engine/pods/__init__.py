"""Pods: groups of containers sharing namespaces around a tiny infra process."""
