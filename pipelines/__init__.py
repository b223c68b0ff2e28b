"""Orchestration layer: Prefect flows, the MLflow / DVC / Great Expectations adapters, the CLI."""
