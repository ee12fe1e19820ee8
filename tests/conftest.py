"""Shared pytest setup. Fixtures for a running stack and a `chaos` handle come from the walletchaos
pytest plugin (walletchaos/pytest_plugin.py), registered through the package's pytest11 entry point."""
