"""The bridge: follows Snort's alert output, parses it and decides what to block."""
