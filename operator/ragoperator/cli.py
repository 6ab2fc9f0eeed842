"""``ragline operator``: registered as a plugin of the ``ragline`` command (entry point
group ``ragline.commands``), so the data plane's CLI never imports the operator."""

from __future__ import annotations

from typing import Annotated

import typer


def operator_command(
    namespace: Annotated[
        list[str] | None, typer.Option(help="Namespace to watch (repeatable).")
    ] = None,
    all_namespaces: Annotated[bool, typer.Option(help="Watch the whole cluster.")] = False,
    liveness_port: Annotated[int, typer.Option(help="kopf liveness endpoint port.")] = 8081,
    liveness_host: Annotated[str, typer.Option(help="Address of the liveness endpoint.")] = (
        "0.0.0.0"  # noqa: S104 - a pod's probe comes from the kubelet, not loopback
    ),
) -> None:
    """Run the kopf operator for RagIndex, InferencePool and ProviderBudget."""
    from ragapi.logs import configure_logging
    from ragoperator.main import run
    from ragoperator.settings import get_settings

    configure_logging()
    get_settings()
    if not namespace and not all_namespaces:
        raise typer.BadParameter("give --namespace (repeatable) or --all-namespaces")
    run(
        namespace or [],
        clusterwide=all_namespaces,
        liveness=f"http://{liveness_host}:{liveness_port}/healthz",
    )
