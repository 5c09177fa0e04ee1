"""Developer tooling: local services for tests and `make dev`."""
