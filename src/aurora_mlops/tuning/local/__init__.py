"""The embedded runner: a Katib Experiment run here with Optuna, its trials as processes.

Imports the search spaces and the Katib Experiment rooms, never the analysis. The package exports
its names from ``aurora_mlops/tuning/__init__.py``; nothing outside ``tuning`` imports this room.
"""
