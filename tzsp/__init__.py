"""The sensor: TZSP decapsulation into a libpcap stream (tzspd) and TZSP replay (tzsp-replay)."""
