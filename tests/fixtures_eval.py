"""Shared pytest fixtures for the eval area (session-scoped, built once per test run)."""
