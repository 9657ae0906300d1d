"""Simulated Stacks network for development and tests; the service never depends on it."""
