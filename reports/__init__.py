"""Scoring, the scorecard plugin, and the committed baseline the merge gate compares against."""
