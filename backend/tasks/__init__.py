"""Tasks: every signed-in user's to-do items, reachable only by their owner."""
