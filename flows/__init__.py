"""Prefect flows: one module per flow, orchestration only (which tasks, in what order, how concurrent)."""
