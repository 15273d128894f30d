"""Scorecard plugin (being written)."""
