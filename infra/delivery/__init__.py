"""Delivery of team models: canary analysis, promotion and rollback (docs/delivery.md)."""
