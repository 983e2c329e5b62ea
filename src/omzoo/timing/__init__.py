"""Timing: warm-up and rounds of timed loops, contention while they run, and the statistics of the rounds."""
