"""The CI runner agent: claims builds from a Forgeyard server and runs their steps.

It speaks to the server only through the runner protocol (``forgeyard.protocol.runner``, via
``forgeyard.client.runner``) and never reaches a database. Start it with ``forgeyard runner``,
or in-process with :func:`forgeyard.runner.agent.run_agent`.
"""
