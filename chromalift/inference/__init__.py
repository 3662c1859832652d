"""Colorizing a photo: one Colorizer over interchangeable engines, geometry, hints, export."""
