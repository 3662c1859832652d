"""Many photos in one run: the plan, the pipeline of photo stages, shards."""
