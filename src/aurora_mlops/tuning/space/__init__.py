"""Search spaces: the typed parameters, each variant's spaces, and their Optuna distributions.

Lowest room of :mod:`aurora_mlops.tuning`: it imports no other room. The package exports its
names from ``aurora_mlops/tuning/__init__.py``; nothing outside ``tuning`` imports this room.
"""
