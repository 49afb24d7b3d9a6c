"""Functional preprocessing steps: pure functions on BOLD tensors, affines and metadata."""
