"""The runner's wire contracts: what a CI runner and the server say to each other.

Pure models and constants, nothing that reaches a database or a network: both the server
(``forgeyard.ci``) and the runner agent (``forgeyard.runner``) import them, and nothing else
of each other.
"""
