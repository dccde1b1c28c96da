"""A small provider that lives in the test suite: a real plugin (plugin.py) against a real local
OAuth2 + API server (server.py), exercising the whole plugin contract."""
