"""Run artefacts for humans and CI: index.html (html.py), junit.xml (junit.py), summary.md (summary.py)."""
