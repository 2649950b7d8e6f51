"""The responder: blocks attackers on MikroTik routers over SSH, remembers and catches up."""
