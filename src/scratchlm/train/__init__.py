"""Stage 6: the one training loop, its schedule, optimizer and losses, and checkpoints that resume exactly."""
