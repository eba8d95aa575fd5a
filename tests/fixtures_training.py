"""Shared pytest fixtures for the training area (session-scoped, built once per test run)."""
