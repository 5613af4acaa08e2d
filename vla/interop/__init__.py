"""Bridges between this stack and other robot-learning frameworks (one subpackage per framework)."""
