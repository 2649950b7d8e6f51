"""Plumbing shared by the sensor and the bridge: systemd's sd_notify and a small bounded HTTP server.

Imports only the standard library; everything else may import it.
"""
