"""Running searches: configuration, building a run's parts, the trainer, executors, results, restore."""
