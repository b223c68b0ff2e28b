"""Prefect flows: each stage a task, so runs show stage by stage in the Prefect UI."""
