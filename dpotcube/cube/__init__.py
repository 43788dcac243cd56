"""The cube: a labeled Galactocentric grid, fields evaluated chunk by chunk, written to Zarr."""
