"""Plumbing shared by the sensor and the bridge: systemd's sd_notify, a small bounded HTTP server,
the state_dir lock, the steady clock, and the demos' free port and polling (loopback).

Imports only the standard library; everything else may import it.
"""
