"""Shared pytest fixtures for the engine area (session-scoped, built once per test run)."""
