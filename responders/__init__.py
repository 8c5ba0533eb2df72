"""responders."""
