"""The HTTP layer: the app, its middleware, error handling and request inputs."""
