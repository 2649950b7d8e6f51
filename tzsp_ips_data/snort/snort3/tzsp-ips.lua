-- tzsp-ips.lua -- Snort 3 configuration for tzsp-ips.
--
-- Use:  tzspd --exec "snort -c /etc/tzsp-ips/snort3/tzsp-ips.lua -r /dev/stdin --daq-batch-size 1 -l /var/log/snort -q"
-- or:   tzspd | snort -c .../tzsp-ips.lua -r /dev/stdin --daq-batch-size 1 -l /var/log/snort -q
-- (Snort 3 refuses "-r -"; without --daq-batch-size 1 a slow pipe holds packets until 64 have arrived.)
--
-- Every setting below is here because a real run showed it matters (README, "Snort configuration").

-- The stock configuration of the installation: variables, inspectors, the service wizard.
-- SNORT_LUA_PATH (Snort's own name for it) is the directory holding the stock snort.lua, e.g.
-- /opt/snort3/etc/snort; without it the usual places are tried. The one thing to set when Snort
-- lives elsewhere: SNORT_LUA_PATH=/opt/snort3/etc/snort in tzspd's environment (/etc/default/tzspd).
local function stock_snort_lua()
    local places = { os.getenv('SNORT_LUA_PATH'), '/usr/local/etc/snort', '/etc/snort',
                     '/usr/etc/snort', '/opt/snort3/etc/snort', '/opt/snort/etc/snort' }
    for _, dir in pairs(places) do
        if dir and dir ~= '' then
            local path = dir .. '/snort.lua'
            local file = io.open(path, 'r')
            if file then
                file:close()
                return path
            end
        end
    end
    error('tzsp-ips.lua: no stock snort.lua found; set SNORT_LUA_PATH to the directory holding it ' ..
          '(e.g. /opt/snort3/etc/snort)')
end
include(stock_snort_lua())

-- $HOME_NET: your networks, from the one file both engines read (../home-net.conf, the line
-- "ipvar HOME_NET ..."). The stock snort.lua set HOME_NET before its defaults copied it into
-- default_variables, so every variable that followed it (the *_SERVERS) follows the new value.
local function home_net_file()
    local here = debug.getinfo(1, 'S').source:match('^@(.*)/[^/]*$') or '.'
    local path = here .. '/../home-net.conf'
    local file = io.open(path, 'r')
    if not file then
        error('tzsp-ips.lua: ' .. path .. ' not found; copy home-net.conf beside the snort3/ directory')
    end
    local value
    for line in file:lines() do
        value = line:match('^%s*ipvar%s+HOME_NET%s+(%S+)') or value
    end
    file:close()
    if not value then
        error('tzsp-ips.lua: no "ipvar HOME_NET ..." line in ' .. path)
    end
    return value
end
do
    local stock_home = HOME_NET
    HOME_NET = home_net_file()
    for name, value in pairs(default_variables.nets) do
        if name == 'HOME_NET' or (value == stock_home and name ~= 'EXTERNAL_NET') then
            default_variables.nets[name] = HOME_NET
        end
    end
end

-- Mirrored traffic from a router with checksum offload carries bad TCP checksums on the packets the
-- router itself sent. Snort checks them by default and leaves those packets out of stream
-- reassembly: the server's ACKs never arrive, the client's data is flushed only at exit, and an SSH
-- brute force is reported when Snort stops instead of while it happens.
network = { checksum_eval = 'none' }

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
    -- Rule sets of your own (the Snort 3 community rules, pulledpork3's output): one -R FILE on
    -- the command line (README, "Rule sets"); it adds to these rules.
}

-- The default queue logs 3 events per packet ordered by content length: an XMAS probe raises four
-- decoder events (116:401/419/422/423) that push the priority-1 scan rule out of the log.
event_queue = { max_queue = 16, log = 16, order_events = 'priority' }

-- At most one line per rule, attacker and minute. Without it every probe of a stealth scan is an
-- alert (an XMAS scan of 1000 ports wrote 4,997 lines, a /16 fills a disk); the first alert, the
-- one that blocks, still goes out at once, and the next one a minute later if the attack goes on.
-- gid 0, sid 0: every rule, the builtin decoder and port_scan events included.
event_filter =
{
    { gid = 0, sid = 0, type = 'limit', track = 'by_src', count = 1, seconds = 60 },
}

-- Files the bridge follows. The file loggers flush after every alert.
alert_fast = { file = true }
-- dir, tcp_flags and icmp_type tell whether a gid-122 alert sits on a reply packet (attacker = dst).
alert_json =
{
    file = true,
    fields = 'timestamp seconds gid sid rev msg priority class proto dir pkt_gen ' ..
             'src_addr src_port dst_addr dst_port tcp_flags icmp_type pkt_num action',
}
