"""Comparing backends on one question set: question files, scores, runs and reports."""
