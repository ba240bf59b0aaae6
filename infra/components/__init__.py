"""Pulumi components, one concept per module."""
