"""Strategies shipped with the profiler; a user's own strategy is named in the plan instead."""
