"""Python clients of Forgeyard's HTTP API (httpx). ``client.runner`` speaks the runner
protocol (``forgeyard.protocol.runner``) for the runner agent."""
