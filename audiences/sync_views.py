"""Views for syncs and runs (thin: the engine lives in audiences/sync.py)."""
