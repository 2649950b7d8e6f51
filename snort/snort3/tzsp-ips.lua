-- tzsp-ips.lua -- Snort 3 configuration for tzsp-ips.
--
-- Use:  tzspd --exec "snort -c /etc/tzsp-ips/snort3/tzsp-ips.lua -r /dev/stdin --daq-batch-size 1 -l /var/log/snort -q"
-- or:   tzspd | snort -c .../tzsp-ips.lua -r /dev/stdin --daq-batch-size 1 -l /var/log/snort -q
-- (Snort 3 refuses "-r -"; without --daq-batch-size 1 a slow pipe holds packets until 64 have arrived.)
--
-- Every setting below is here because a real run showed it matters (README, "Snort configuration").

-- The stock configuration: variables, inspectors, the service wizard. A source build installs it
-- here; adjust the path for a distribution package (e.g. /etc/snort/snort.lua).
include '/usr/local/etc/snort/snort.lua'

-- Port scans: medium sensitivity. "low" raises its alert on the victim's RST or ICMP-unreachable
-- (so the alert reads victim -> scanner) and misses ICMP sweeps. Even at "med" an alert can sit on a
-- reply packet; alert_json below carries dir/tcp_flags/icmp_type so the bridge can tell.
-- Never raise a port_scan threshold above 32767: the fields are 16-bit signed and 65535 wraps to -1,
-- which turns every host into a scanner.
port_scan = default_med_port_scan

ips =
{
    -- Without the builtin rules, port_scan and the decoders raise no alert at all (no gid 122).
    enable_builtin_rules = true,
    variables = default_variables,
    -- Web attacks, SSH brute force and ICMP sweeps have no builtin detector at priority 1;
    -- stealth scans (FIN/NULL/XMAS/SYN+FIN) never reach port_scan. These rules cover them.
    include = 'local.rules',  -- resolved beside this file
}

-- The default queue logs 3 events per packet ordered by content length: an XMAS probe raises four
-- decoder events (116:401/419/422/423) that push the priority-1 scan rule out of the log.
event_queue = { max_queue = 16, log = 16, order_events = 'priority' }

-- Files the bridge follows. The file loggers flush after every alert.
alert_fast = { file = true }
-- dir, tcp_flags and icmp_type tell whether a gid-122 alert sits on a reply packet (attacker = dst).
alert_json =
{
    file = true,
    fields = 'timestamp seconds gid sid rev msg priority class proto dir pkt_gen ' ..
             'src_addr src_port dst_addr dst_port tcp_flags icmp_type pkt_num action',
}
