"""Shared pytest fixtures for the recipes area (session-scoped, built once per test run)."""
