"""HTTP handlers of the identity API (aiohttp); errors are raised as domain errors and mapped by the app."""
