"""Pipeline definitions: the file format, its validation, and a pipeline resolved for a build.

A pipeline is YAML, by default the repository's ``.forgeyard.yml``::

    triggers:                 # optional; without it: a push to any branch, and manual starts
      push: {branches: ["main", "release/*"]}    # or `push: true` (any branch)
      pull_request: {branches: ["main"]}         # filters on the pull request's target branch
      manual: true
      schedule: {cron: "0 3 * * *"}              # five cron fields, the server's time zone
    env: {KEY: "value"}       # for every step; names [A-Za-z_][A-Za-z0-9_]*, values strings
    steps:                    # at least one, run in order
      - name: test            # unique; 1-100 of letters, digits, space, '.', '_', '-'
        commands: ["pytest -q"]                  # a string or a list; at least one
        env: {K: "v"}         # this step's own, over the pipeline's
        timeout: 600          # seconds, 1 to 86400; default 3600
        when:                 # optional; each key optional
          branch: ["main"]    # globs; a pull request's target branch
          event: ["push"]     # push, pull_request, manual, schedule
          status: success     # success (default): only if nothing before failed;
                              # failure: only if something before failed; always
    artifacts: ["dist/*.whl", "reports/**"]      # paths kept after the build, relative

Unknown keys are errors everywhere. ``when.branch`` and ``when.event`` choose the steps of a
build when it is created (:func:`resolve`); ``when.status`` is decided by the runner as the
build goes. Branch patterns: ``*`` within one ``/``-separated part, ``**`` across parts
(:mod:`forgeyard.ci.pipelines.model`).

:func:`load_pipeline` returns a :class:`Pipeline` with every default filled, or raises
:class:`PipelineInvalid` with every :class:`PipelineIssue` (line, column, JSON path, message);
:func:`validate_pipeline` returns the issues. :data:`PIPELINE_SCHEMA` is the JSON Schema
(draft 2020-12) the file is validated against. :class:`ResolvedPipeline` is what the server
signs and the runner runs.
"""

from forgeyard.ci.pipelines.issues import PipelineInvalid, PipelineIssue
from forgeyard.ci.pipelines.loader import load_pipeline, validate_pipeline
from forgeyard.ci.pipelines.model import (
    BranchFilter,
    Pipeline,
    Step,
    Triggers,
    When,
    branch_matches,
    resolve,
)
from forgeyard.ci.pipelines.schema import DEFAULT_FILE, DEFAULT_TIMEOUT, PIPELINE_SCHEMA
from forgeyard.protocol.resolved import (
    EventKind,
    ResolvedPipeline,
    ResolvedStep,
    Status,
    TriggerEvent,
)

__all__ = [
    "DEFAULT_FILE",
    "DEFAULT_TIMEOUT",
    "PIPELINE_SCHEMA",
    "BranchFilter",
    "EventKind",
    "Pipeline",
    "PipelineInvalid",
    "PipelineIssue",
    "ResolvedPipeline",
    "ResolvedStep",
    "Status",
    "Step",
    "TriggerEvent",
    "Triggers",
    "When",
    "branch_matches",
    "load_pipeline",
    "resolve",
    "validate_pipeline",
]
