"""Stage one (cold start) and stage two (RL): configs, recipes, run directories, batching, validation."""
