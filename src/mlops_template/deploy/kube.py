"""kubectl, as the deploy job calls it: apply the rendered manifests, wait for the rollout."""

from __future__ import annotations

import subprocess
from pathlib import Path

from mlops_template.errors import UserError


def kubectl(*args: str) -> None:
    """Run kubectl with its output in the job's log; UserError when it fails."""
    print(f"+ kubectl {' '.join(args)}", flush=True)
    try:
        done = subprocess.run(["kubectl", *args], check=False)
    except FileNotFoundError:
        raise UserError(
            "kubectl is not installed", "install kubectl (GitHub's runners have it)"
        ) from None
    if done.returncode != 0:
        raise UserError(
            f"`kubectl {' '.join(args)}` failed (status {done.returncode})",
            "see kubectl's message above; check the cluster credentials (KUBE_CONFIG)",
        )


def apply(manifests: Path) -> None:
    """Server-side apply of every manifest in the folder (their namespaces are in them)."""
    kubectl("apply", "--server-side", "--field-manager=mlops-deploy", "-f", str(manifests))


def wait_for_rollout(deployment: str, namespace: str, timeout_seconds: int) -> None:
    kubectl(
        "rollout", "status", f"deployment/{deployment}", "--namespace", namespace,
        f"--timeout={timeout_seconds}s",
    )  # fmt: skip
