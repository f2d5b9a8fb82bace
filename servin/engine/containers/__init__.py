"""Containers in the engine core: the model, its store, and the lifecycle service."""
