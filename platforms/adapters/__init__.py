"""Platform adapters. Ask the registry; never import a concrete adapter elsewhere."""

from platforms.adapters.registry import all_adapter_classes, get_adapter_class

__all__ = ["all_adapter_classes", "get_adapter_class"]
