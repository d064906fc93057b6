"""What every process of a job needs around the work: caches, child processes, Ray, models, /dev/shm."""
