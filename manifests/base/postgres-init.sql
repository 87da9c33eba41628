-- Run once by the postgres image on an empty data directory: a second database for the
-- MLflow basic-auth user store (the tracking store is the image's POSTGRES_DB, `mlflow`).
CREATE DATABASE mlflow_auth OWNER mlflow;
