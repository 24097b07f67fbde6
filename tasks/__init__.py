"""Prefect tasks: thin, retryable wrappers around golive's plain functions (one module per area)."""
