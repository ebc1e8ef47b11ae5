from forgeyard.cli.main import app

app()
