"""CI: pipelines, builds, runners, live logs, artifacts and forge integrations."""
