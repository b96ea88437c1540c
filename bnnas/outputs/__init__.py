"""What a run leaves on disk: atomic checkpoints and files, the work-dir lock, budget-tagged results and plots."""
