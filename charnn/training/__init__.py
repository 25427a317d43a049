"""Training: the event stream, the loop, checkpoints and the distributed set-up."""
