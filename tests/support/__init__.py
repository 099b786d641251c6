"""Test helpers that are not fixtures: fake servers and the like."""
