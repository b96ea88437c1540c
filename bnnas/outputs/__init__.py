"""What a run leaves on disk and on the console: atomic checkpoints and files, the work-dir lock, budget-tagged
results, plots and plain-text tables."""
