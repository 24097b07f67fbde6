"""Prefect flows: orchestration only; each flow body reads as a list of steps."""
