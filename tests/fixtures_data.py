"""Shared pytest fixtures for the data area (session-scoped, built once per test run)."""
