from chromalift.cli.main import run

run()
