"""One adapter per service: Great Expectations, DVC, git, files, MLflow (tracker and registry), Prefect.

Adapters import configuration and pure code, never flows or the command line.
"""
