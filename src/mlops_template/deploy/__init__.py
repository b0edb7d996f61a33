"""Operate the shipped model: promotion and rollback as GTO stage tags (registry.py), Kubernetes
manifests rendered per release (manifests.py), the verified release files (release_files.py),
kubectl (kube.py), the smoke test of a deployed endpoint (smoke.py) and the deploy workflow's
steps that tie them together (run.py)."""
