"""pytest plugin (fixtures) — filled in by the harness."""
