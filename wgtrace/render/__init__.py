"""Renderers: turn plain results (status, traces, verdicts) into text. No kernel access here."""
