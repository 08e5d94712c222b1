"""The web layer: proxy readers, health, metrics, JWKS, and the one place errors become HTTP."""
