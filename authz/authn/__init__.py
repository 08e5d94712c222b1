"""Authenticators: each says who is calling, or that the request is not its kind (``NOT_MINE``)."""
