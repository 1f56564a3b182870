"""Page bodies of the admin UI, one module per page, plain functions."""
