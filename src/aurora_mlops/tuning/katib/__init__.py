"""The Katib Experiment: its model and checks, the rendered specs, and the cluster client.

Imports only the search spaces (:mod:`aurora_mlops.tuning.space`). The package exports its names
from ``aurora_mlops/tuning/__init__.py``; nothing outside ``tuning`` imports this room.
"""
