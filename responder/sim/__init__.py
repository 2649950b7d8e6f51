"""routeros-sim: a RouterOS stand-in (SSH CLI) for trying a setup before touching a production router."""
