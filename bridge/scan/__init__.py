"""The built-in scan detector: distinct destination ports per source in a sliding window.

``probes`` (what one packet or log line says about a probe), ``detector`` (the sliding window and
the scan types, pure), ``packet_source`` (probes from a pcap or pcapng stream), ``routeros_log``
(probes from RouterOS firewall log lines), ``syslog_listener`` (RouterOS's remote syslog over
UDP, bounded), ``alert_out`` (detections written as Snort 3 alert_json lines).

May import: ``bridge.events``, ``bridge.parsers``, ``tzsp`` (capture formats). Never
``bridge.service``, ``bridge.watching`` or the CLI (``snort-bridge scan`` is ``bridge.cli.scan``).
"""
