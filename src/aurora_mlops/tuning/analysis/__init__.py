"""The analysis of a finished local sweep: importance, directions, rungs, and the next spec.

Top room: it reads what the other rooms write and define. The package exports its names from
``aurora_mlops/tuning/__init__.py``; nothing outside ``tuning`` imports this room.
"""
