"""Every domain's job handlers, registered by importing their ``tasks`` modules.

The API process needs them too: domain events are fanned out by whichever process runs the
workers, and ``forgeyard serve`` runs workers beside the API.
"""

from __future__ import annotations

import importlib

TASK_MODULES = (
    "forgeyard.jobs.events",
    "forgeyard.ops.tasks",
    "forgeyard.webhooks.tasks",
    "forgeyard.repos.tasks",
    "forgeyard.analysis.tasks",
    "forgeyard.deps.tasks",
    "forgeyard.ci.tasks",
)


def load_tasks() -> None:
    for module in TASK_MODULES:
        importlib.import_module(module)
