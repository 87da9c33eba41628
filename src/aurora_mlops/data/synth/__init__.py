"""A synthetic data source with learnable dynamics, for every variant.

:func:`synthesize` returns an in-memory canonical dataset (see :mod:`aurora_mlops.data._layout`)
whose fields behave like a toy atmosphere, so that fine-tuning on it means something. One module
per domain:

* :mod:`._geography`: continents, mountains, soil, bathymetry (the static fields);
* :mod:`._atmosphere`: a zonal-mean climate with travelling synoptic waves, sized so that each
  variable varies about as much as in ERA5 (the statistics Aurora normalises with), with a
  diurnal ``2t`` cycle and 10 m winds turned toward low pressure;
* :mod:`._pollution`: four tracers emitted over cities and farmland, advected, removed and
  mixed in a diurnal boundary layer;
* :mod:`._sea`: a wind sea and two swells;
* :mod:`._generate`: the time loop and the canonical dataset;
* :mod:`._drift`: a drift laid over the fields (a warming trend) for monitoring demos.

Everything is vectorised over the grid and generated one time step at a time into preallocated
``float32`` arrays, so memory stays close to the size of the result. The same seed gives the
same dataset.
"""

from __future__ import annotations

from aurora_mlops.data.synth._drift import DRIFT_KINDS, SynthDrift
from aurora_mlops.data.synth._generate import synthesize

__all__ = ["DRIFT_KINDS", "SynthDrift", "synthesize"]
