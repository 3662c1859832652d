"""Training: configuration, the loop, losses, schedule, validation, log, checkpoints, the GPU window."""
