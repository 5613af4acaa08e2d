"""Scripted-expert demonstration datasets in the public LeRobot LIBERO format (see generate.py)."""
