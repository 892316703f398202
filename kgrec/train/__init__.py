"""Training: configuration, the loop, and the run directory."""
