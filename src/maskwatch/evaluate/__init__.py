"""Metrics (classification), plots and reports."""
