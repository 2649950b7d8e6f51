"""Talking to one router: SSH (paramiko) or the RouterOS API (librouteros, TLS), and their trust.

``ssh`` (one persistent transport, a fresh exec channel per command), ``ssh_session`` (a router
session over SSH), ``api`` (the same session over the API), ``api_connection`` (its connection:
login, pipelined commands, traps), ``tls`` (api-ssl certificates), ``known_hosts`` (OpenSSH host
keys), ``secrets`` (passwords and key files, never on a command line).

May import ``responder.routeros``, ``responder.config``, ``responder.errors``; never
``responder.sync``, ``responder.ledger`` or anything in ``bridge``.
"""
