/*
 * tzsp_load -- the benchmark's load generator and pcap counter (loopback only).
 *
 *   tzsp_load send  -p PORT [-6] [-s FRAME_BYTES] [-r PPS] [-n COUNT] [-t SECONDS] [-b BATCH] [-f PCAP]
 *   tzsp_load count [-n COUNT] < pcap-stream
 *
 * send: sendmmsg(2) batches of RouterOS-style TZSP datagrams (01 00 00 01 01 + an
 * Ethernet/IPv4/TCP frame of FRAME_BYTES) to 127.0.0.1 (or ::1 with -6) -- no other
 * destination exists. Each frame carries "TZSB" and a 32-bit sequence number at frame offset
 * 54 and a TCP source port that changes with it (many flows). Paced to PPS (0: as fast as it
 * goes) by sending what is due, then sleeping; stops after COUNT datagrams or SECONDS,
 * whichever comes first. Prints one JSON line: sent, seconds, pps.
 *
 * send -f PCAP: the frames of a classic pcap file (Ethernet) instead, in order, over and over.
 * Each pass after the first moves every IPv4/IPv6 address to another one, the same for both
 * directions (+pass on the address's second-to-last 16-bit word, -pass on its last: the
 * one's-complement sum, so every IP/TCP/UDP checksum stays valid), so each pass is new flows.
 *
 * count: reads a classic pcap stream, checks the global header and every record, and counts
 * records and distinct sequence numbers below COUNT. Prints one JSON line.
 *
 * Built on demand by bench/bench_tzspd.py with the machine's cc.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TZSP_LEN 5
#define SEQ_AT 54 /* Ethernet 14 + IPv4 20 + TCP 20 */
#define MIN_FRAME 62
#define MAX_FRAME 9000
#define MAX_BATCH 256

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint16_t ip_checksum(const uint8_t *p, size_t n) {
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < n; i += 2)
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

/* One datagram: TZSP header, then the frame. Sequence-dependent fields are set by stamp(). */
static void build(uint8_t *d, size_t frame) {
    static const uint8_t head[TZSP_LEN] = {1, 0, 0, 1, 1};
    memset(d, 0, TZSP_LEN + frame);
    memcpy(d, head, TZSP_LEN);
    uint8_t *f = d + TZSP_LEN;
    const uint8_t eth[14] = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00};
    memcpy(f, eth, 14);
    uint8_t *ip = f + 14;
    uint16_t total = (uint16_t)(frame - 14);
    ip[0] = 0x45;
    ip[2] = (uint8_t)(total >> 8);
    ip[3] = (uint8_t)total;
    ip[6] = 0x40; /* DF */
    ip[8] = 64;
    ip[9] = 6;
    const uint8_t src[4] = {192, 0, 2, 1}, dst[4] = {198, 51, 100, 1};
    memcpy(ip + 12, src, 4);
    memcpy(ip + 16, dst, 4);
    uint8_t *tcp = ip + 20;
    tcp[2] = 0;
    tcp[3] = 80;
    tcp[12] = 5 << 4;
    tcp[13] = 0x18;
    tcp[14] = 0xff;
    tcp[15] = 0xff;
    memcpy(f + SEQ_AT, "TZSB", 4);
    for (size_t i = SEQ_AT + 8; i < frame; i++)
        f[i] = (uint8_t)i;
}

static void stamp(uint8_t *d, uint32_t seq) {
    uint8_t *f = d + TZSP_LEN;
    uint8_t *ip = f + 14;
    uint16_t sport = (uint16_t)(1024 + seq % 64000);
    ip[4] = (uint8_t)(seq >> 8);
    ip[5] = (uint8_t)seq;
    ip[10] = ip[11] = 0;
    uint16_t sum = ip_checksum(ip, 20);
    ip[10] = (uint8_t)(sum >> 8);
    ip[11] = (uint8_t)sum;
    ip[20] = (uint8_t)(sport >> 8);
    ip[21] = (uint8_t)sport;
    uint32_t be = htonl(seq);
    memcpy(f + SEQ_AT + 4, &be, 4);
}

/* ---- frames from a pcap file (-f) */

typedef struct {
    uint8_t *data; /* TZSP header + frame */
    size_t len;
} Datagram;

static Datagram *load_pcap(const char *path, size_t *count) {
    FILE *in = fopen(path, "rb");
    if (!in) { perror(path); return NULL; }
    uint8_t header[24], rec[16];
    if (fread(header, 1, 24, in) != 24 || memcmp(header, "\xd4\xc3\xb2\xa1", 4) != 0) {
        fprintf(stderr, "%s: not a little-endian microsecond pcap file\n", path);
        fclose(in);
        return NULL;
    }
    size_t cap = 1024, n = 0;
    Datagram *all = malloc(cap * sizeof *all);
    while (all && fread(rec, 1, 16, in) == 16) {
        uint32_t incl;
        memcpy(&incl, rec + 8, 4);
        if (incl > 65535 - TZSP_LEN) { fprintf(stderr, "%s: frame too large\n", path); break; }
        uint8_t *d = malloc(TZSP_LEN + incl);
        if (!d || fread(d + TZSP_LEN, 1, incl, in) != incl) { free(d); break; }
        static const uint8_t head[TZSP_LEN] = {1, 0, 0, 1, 1};
        memcpy(d, head, TZSP_LEN);
        if (n == cap) {
            cap *= 2;
            Datagram *grown = realloc(all, cap * sizeof *all);
            if (!grown) { free(d); break; }
            all = grown;
        }
        all[n].data = d;
        all[n].len = TZSP_LEN + incl;
        n++;
    }
    fclose(in);
    *count = n;
    return all;
}

/* One's-complement a + b on 16-bit words. */
static uint16_t oc_add(uint16_t a, uint16_t b) {
    uint32_t s = (uint32_t)a + b;
    return (uint16_t)((s & 0xffff) + (s >> 16));
}

/* Move one address (its last 4 bytes) by k, keeping its one's-complement sum. */
static void shift_address(uint8_t *a, uint16_t k) {
    uint16_t hi = (uint16_t)(a[0] << 8 | a[1]), lo = (uint16_t)(a[2] << 8 | a[3]);
    hi = oc_add(hi, k);
    lo = oc_add(lo, (uint16_t)~k);
    a[0] = (uint8_t)(hi >> 8); a[1] = (uint8_t)hi;
    a[2] = (uint8_t)(lo >> 8); a[3] = (uint8_t)lo;
}

static void shift_frame(uint8_t *f, size_t len, uint16_t k) {
    if (k == 0 || len < 14) return;
    size_t off = 12;
    unsigned type = (unsigned)(f[off] << 8 | f[off + 1]);
    if (type == 0x8100 && len >= 18) { off += 4; type = (unsigned)(f[off] << 8 | f[off + 1]); }
    off += 2;
    if (type == 0x0800 && len >= off + 20) {
        shift_address(f + off + 12, k);
        shift_address(f + off + 16, k);
    } else if (type == 0x86DD && len >= off + 40) {
        shift_address(f + off + 8 + 12, k);
        shift_address(f + off + 24 + 12, k);
    }
}

static int do_send(int argc, char **argv) {
    unsigned port = 0;
    size_t frame = 64;
    double rate = 0, seconds = 10;
    unsigned long long count = 1000000;
    unsigned batch = 64;
    int v6 = 0, ch;
    const char *file = NULL;
    while ((ch = getopt(argc, argv, "p:s:r:n:t:b:6f:")) != -1) {
        switch (ch) {
        case 'p': port = (unsigned)strtoul(optarg, NULL, 10); break;
        case 's': frame = strtoul(optarg, NULL, 10); break;
        case 'r': rate = strtod(optarg, NULL); break;
        case 'n': count = strtoull(optarg, NULL, 10); break;
        case 't': seconds = strtod(optarg, NULL); break;
        case 'b': batch = (unsigned)strtoul(optarg, NULL, 10); break;
        case '6': v6 = 1; break;
        case 'f': file = optarg; break;
        default: return 2;
        }
    }
    if (port == 0 || port > 65535 || frame < MIN_FRAME || frame > MAX_FRAME || batch < 1 || batch > MAX_BATCH ||
        seconds <= 0 || seconds > 3600 || rate < 0) {
        fprintf(stderr, "tzsp_load send: -p 1..65535, -s %d..%d, -b 1..%d, -t 0..3600 required\n",
                MIN_FRAME, MAX_FRAME, MAX_BATCH);
        return 2;
    }
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); /* sleep as precisely as the kernel allows */
    int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) { perror("socket"); return 1; }
    int sndbuf = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    int rc;
    if (v6) { /* loopback only: there is no option for another destination */
        struct sockaddr_in6 to = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port), .sin6_addr = IN6ADDR_LOOPBACK_INIT};
        rc = connect(fd, (struct sockaddr *)&to, sizeof to);
    } else {
        struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        rc = connect(fd, (struct sockaddr *)&to, sizeof to);
    }
    if (rc < 0) { perror("connect"); return 1; }
    size_t frames = 0, next = 0, pass = 0;
    Datagram *mix = NULL;
    if (file) {
        mix = load_pcap(file, &frames);
        if (!mix || frames == 0) { fprintf(stderr, "tzsp_load send: no frames in %s\n", file); return 1; }
        frame = 65535 - TZSP_LEN;
    }
    size_t size = TZSP_LEN + frame;
    uint8_t *bufs = malloc(size * batch);
    struct mmsghdr *msgs = calloc(batch, sizeof *msgs);
    struct iovec *iov = calloc(batch, sizeof *iov);
    if (!bufs || !msgs || !iov) { perror("malloc"); return 1; }
    for (unsigned i = 0; i < batch; i++) {
        if (!mix)
            build(bufs + i * size, frame);
        iov[i].iov_base = bufs + i * size;
        iov[i].iov_len = size;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    double start = now_s(), end = start + seconds;
    unsigned long long sent = 0, refused = 0;
    while (sent < count) {
        double now = now_s();
        if (now >= end) break;
        unsigned long long due = count - sent;
        if (rate > 0) {
            double target = (now - start) * rate;
            if (target < (double)sent + 1) { /* ahead of schedule: sleep until the next one is due */
                double wait = ((double)sent + 1) / rate - (now - start);
                struct timespec t = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
                nanosleep(&t, NULL);
                continue;
            }
            unsigned long long behind = (unsigned long long)target - sent;
            if (behind < due) due = behind;
        }
        unsigned n = due < batch ? (unsigned)due : batch;
        for (unsigned i = 0; i < n; i++) {
            if (!mix) {
                stamp(bufs + i * size, (uint32_t)(sent + i));
                continue;
            }
            uint8_t *d = bufs + i * size;
            memcpy(d, mix[next].data, mix[next].len);
            iov[i].iov_len = mix[next].len;
            shift_frame(d + TZSP_LEN, mix[next].len - TZSP_LEN, (uint16_t)pass);
            if (++next == frames) { next = 0; pass++; }
        }
        int got = sendmmsg(fd, msgs, n, 0);
        if (got < 0) {
            if (errno == ECONNREFUSED || errno == EAGAIN || errno == ENOBUFS) {
                refused++; /* nobody listening yet, or a full queue: those datagrams are lost */
                sent += n;
                continue;
            }
            perror("sendmmsg");
            return 1;
        }
        sent += (unsigned)got;
    }
    double elapsed = now_s() - start;
    printf("{\"sent\": %llu, \"seconds\": %.6f, \"pps\": %.1f, \"send_errors\": %llu}\n", sent, elapsed,
           elapsed > 0 ? (double)sent / elapsed : 0.0, refused);
    return 0;
}

static size_t read_full(uint8_t *p, size_t n) {
    return fread(p, 1, n, stdin); /* stdio buffers 1 MiB at a time: no system call per record */
}

static int do_count(int argc, char **argv) {
    unsigned long long limit = 1ULL << 26;
    int ch;
    while ((ch = getopt(argc, argv, "n:")) != -1) {
        if (ch == 'n') limit = strtoull(optarg, NULL, 10);
        else return 2;
    }
    if (limit == 0 || limit > (1ULL << 32)) limit = 1ULL << 32;
    uint8_t *seen = calloc((size_t)(limit + 7) / 8, 1);
    static uint8_t record[16 + 262144];
    uint8_t header[24];
    if (!seen) { perror("calloc"); return 1; }
    setvbuf(stdin, NULL, _IOFBF, 1 << 20);
    int header_ok = 0;
    uint32_t linktype = 0;
    unsigned long long records = 0, delivered = 0, duplicates = 0, foreign = 0, out_of_range = 0, bad = 0;
    if (read_full(header, 24) == 24) {
        uint32_t magic;
        memcpy(&magic, header, 4);
        header_ok = (magic == 0xa1b2c3d4 || magic == 0xa1b23c4d) && header[4] == 2 && header[6] == 4;
        memcpy(&linktype, header + 20, 4);
    }
    while (header_ok) {
        size_t got = read_full(record, 16);
        if (got == 0) break;
        if (got < 16) { bad++; break; }
        uint32_t incl, orig;
        memcpy(&incl, record + 8, 4);
        memcpy(&orig, record + 12, 4);
        if (incl > 262144 || incl > orig) { bad++; break; }
        if (read_full(record + 16, incl) < incl) { bad++; break; }
        records++;
        const uint8_t *f = record + 16;
        if (incl < SEQ_AT + 8 || memcmp(f + SEQ_AT, "TZSB", 4) != 0) { foreign++; continue; }
        uint32_t be;
        memcpy(&be, f + SEQ_AT + 4, 4);
        unsigned long long seq = ntohl(be);
        if (seq >= limit) { out_of_range++; continue; }
        if (seen[seq >> 3] & (1u << (seq & 7))) { duplicates++; continue; }
        seen[seq >> 3] |= (uint8_t)(1u << (seq & 7));
        delivered++;
    }
    printf("{\"header_ok\": %s, \"linktype\": %u, \"records\": %llu, \"delivered\": %llu, \"duplicates\": %llu, "
           "\"foreign\": %llu, \"out_of_range\": %llu, \"bad\": %llu}\n",
           header_ok ? "true" : "false", linktype, records, delivered, duplicates, foreign, out_of_range, bad);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "send") == 0) return do_send(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "count") == 0) return do_count(argc - 1, argv + 1);
    fprintf(stderr, "usage: tzsp_load send -p PORT [-6] [-s BYTES] [-r PPS] [-n COUNT] [-t SECONDS] [-b BATCH] [-f PCAP]\n"
                    "       tzsp_load count [-n COUNT] < pcap\n");
    return 2;
}
