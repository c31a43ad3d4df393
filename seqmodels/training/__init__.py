"""One run, start to end: the machinery (its folder, the pipeline, the callbacks that make it
resumable, the Hydra job around it, the console and the logs)."""
