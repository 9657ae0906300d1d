"""Marshmallow schemas of request parameters and responses."""
