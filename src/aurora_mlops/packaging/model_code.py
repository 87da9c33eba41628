"""The model file of a packaged Aurora model ("models from code").

MLflow copies this file into the package and runs it at load time; it only names the pyfunc
class. The expensive work (building the model, loading the checkpoint) happens once per process
in :meth:`AuroraForecaster.load_context`.
"""

import mlflow

from aurora_mlops.packaging._pyfunc import AuroraForecaster

mlflow.models.set_model(AuroraForecaster())
