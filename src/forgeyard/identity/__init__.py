"""Identity: first-run setup, accounts, sign-in, organizations, members, API keys."""
