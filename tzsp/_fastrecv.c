/*
 * tzsp._fastrecv -- optional accelerator for tzspd's receive loop.
 *
 * The same contract as tzsp.batcher.PyBatcher (the pure-Python fallback, which must give
 * byte-identical output): recvmmsg(2) batches into pre-allocated 64 KiB slots, kernel
 * receive times from SCM_TIMESTAMPNS control messages, and for the common RouterOS datagram
 * (01 00 00 01 01 + Ethernet frame) from an accepted sender a pcap record appended to the
 * caller's output buffer. Anything else (a sender not judged yet, a datagram with tags, an
 * error) is left "pending" for Python to take with take(), so the slow and rare cases keep
 * one implementation (tzsp.receiver.classify) and the order of records is the order of
 * arrival.
 *
 * Built by setup.py when a C compiler is present (optional=True); never required.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SLOT 65536              /* a UDP payload never exceeds 65535 bytes: no truncation */
#define CONTROL_SPACE 128       /* timestamp (32) + drop counter (24) with room to spare */
#define RECORD_HEADER 16
#define FAST_LEN 5
#define MAX_VLEN 1024
#define NS 1000000000LL
#define MAX_TS (0xFFFFFFFFLL * NS + NS - 1)

enum { STATUS_EMPTY = 0, STATUS_FULL = 1, STATUS_PENDING = 2 };

static const unsigned char FAST_HEADER[FAST_LEN] = {1, 0, 0, 1, 1};

typedef struct {
    PyObject_HEAD
    int fd;
    unsigned vlen;
    int control;
    unsigned char *slots;
    size_t slots_size;
    struct mmsghdr *msgs;
    struct iovec *iovs;
    struct sockaddr_in6 *names;
    unsigned char *controls;
    unsigned count;        /* messages in the current batch */
    unsigned cursor;       /* next message to look at */
    int short_batch;       /* the current batch came back short: the socket was empty */
    long long pending_ns;  /* receive time of the pending message */
    unsigned char last_key[16];
    int last_key_len;      /* -1: no cached verdict */
    int last_ok;
} Batcher;

static void put_u32le(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static void Batcher_dealloc(Batcher *self) {
    if (self->slots && self->slots != MAP_FAILED)
        munmap(self->slots, self->slots_size);
    PyMem_Free(self->msgs);
    PyMem_Free(self->iovs);
    PyMem_Free(self->names);
    PyMem_Free(self->controls);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Batcher_init(Batcher *self, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"fd", "vlen", "control", NULL};
    int fd;
    unsigned vlen = 64;
    int control = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "i|Ip", keywords, &fd, &vlen, &control))
        return -1;
    if (vlen < 1 || vlen > MAX_VLEN) {
        PyErr_Format(PyExc_ValueError, "vlen must be 1..%d", MAX_VLEN);
        return -1;
    }
    if (self->msgs) {
        PyErr_SetString(PyExc_RuntimeError, "Batcher is already initialised");
        return -1;
    }
    self->fd = fd;
    self->vlen = vlen;
    self->control = control;
    self->slots_size = (size_t)vlen * SLOT;
    /* mmap: pages are only touched (and count towards RSS) where datagrams land */
    self->slots = mmap(NULL, self->slots_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (self->slots == MAP_FAILED) {
        self->slots = NULL;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    self->msgs = PyMem_Calloc(vlen, sizeof(struct mmsghdr));
    self->iovs = PyMem_Calloc(vlen, sizeof(struct iovec));
    self->names = PyMem_Calloc(vlen, sizeof(struct sockaddr_in6));
    self->controls = PyMem_Calloc(vlen, CONTROL_SPACE);
    if (!self->msgs || !self->iovs || !self->names || !self->controls) {
        PyErr_NoMemory();
        return -1;
    }
    for (unsigned i = 0; i < vlen; i++) {
        self->iovs[i].iov_base = self->slots + (size_t)i * SLOT;
        self->iovs[i].iov_len = SLOT;
        self->msgs[i].msg_hdr.msg_iov = &self->iovs[i];
        self->msgs[i].msg_hdr.msg_iovlen = 1;
        self->msgs[i].msg_hdr.msg_name = &self->names[i];
    }
    self->last_key_len = -1;
    return 0;
}

/* Receive time and drop total from one message's control messages. */
static void read_control(Batcher *self, struct msghdr *hdr, long long *ts, uint32_t *drops) {
    if (!self->control)
        return;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(hdr); c != NULL; c = CMSG_NXTHDR(hdr, c)) {
        if (c->cmsg_level != SOL_SOCKET)
            continue;
        if (c->cmsg_type == SCM_TIMESTAMPNS && c->cmsg_len >= CMSG_LEN(sizeof(struct timespec))) {
            struct timespec t;
            memcpy(&t, CMSG_DATA(c), sizeof t);
            *ts = (long long)t.tv_sec * NS + t.tv_nsec;
        } else if (c->cmsg_type == SO_RXQ_OVFL && c->cmsg_len >= CMSG_LEN(sizeof(uint32_t))) {
            uint32_t d;
            memcpy(&d, CMSG_DATA(c), sizeof d);
            if (d > *drops)
                *drops = d;
        }
    }
}

/* The sender's address bytes: 4 for IPv4, 16 for IPv6 (mapped IPv4 included); 0 otherwise. */
static int sender_key(const struct sockaddr_in6 *name, socklen_t namelen, unsigned char *key) {
    if (name->sin6_family == AF_INET && namelen >= sizeof(struct sockaddr_in)) {
        memcpy(key, &((const struct sockaddr_in *)name)->sin_addr, 4);
        return 4;
    }
    if (name->sin6_family == AF_INET6 && namelen >= sizeof(struct sockaddr_in6)) {
        memcpy(key, &name->sin6_addr, 16);
        return 16;
    }
    return 0;
}

/* 1 accepted, 0 refused, -1 not judged yet (Python decides), -2 error. */
static int sender_verdict(Batcher *self, PyObject *senders, const unsigned char *key, int len) {
    if (self->last_key_len == len && memcmp(self->last_key, key, (size_t)len) == 0)
        return self->last_ok;
    PyObject *k = PyBytes_FromStringAndSize((const char *)key, len);
    if (!k)
        return -2;
    PyObject *v = PyDict_GetItemWithError(senders, k);
    Py_DECREF(k);
    if (!v)
        return PyErr_Occurred() ? -2 : -1;
    int ok = PyObject_IsTrue(v);
    if (ok < 0)
        return -2;
    memcpy(self->last_key, key, (size_t)len);
    self->last_key_len = len;
    self->last_ok = ok;
    return ok;
}

static void reset_headers(Batcher *self) {
    for (unsigned i = 0; i < self->vlen; i++) {
        struct msghdr *h = &self->msgs[i].msg_hdr;
        h->msg_namelen = sizeof(struct sockaddr_in6);
        h->msg_control = self->control ? self->controls + (size_t)i * CONTROL_SPACE : NULL;
        h->msg_controllen = self->control ? CONTROL_SPACE : 0;
        h->msg_flags = 0;
    }
}

PyDoc_STRVAR(drain_into_doc,
"drain_into(out, pos, limit, batch_ns, nanosecond, snaplen, fast, senders, wait=False)\n"
"-> (pos, count, received, not_allowed, drops, status)\n\n"
"Append pcap records for fast-path datagrams to the writable buffer out from pos until the\n"
"socket is empty (status 0), a record ends past limit (1), or a datagram needs Python (2:\n"
"call take()). senders maps sender key bytes to True/False, or is None (accept all).\n"
"wait: if no batch is pending, block (GIL released) until a datagram arrives, a signal, or\n"
"the socket's SO_RCVTIMEO; batch_ns is then the time the wait ended.");

typedef struct {
    Py_ssize_t count, received, not_allowed;
    uint32_t drops;
} Tally;

/* The drain loop shared by drain_into and pump. Returns a status, or -1 with an exception set. */
static int drain_core(Batcher *self, unsigned char *buf, Py_ssize_t buflen, Py_ssize_t *pos_io, Py_ssize_t limit,
                      long long batch_ns, int nanosecond, Py_ssize_t snaplen, int fast, PyObject *senders, int wait,
                      Tally *tally) {
    Py_ssize_t pos = *pos_io;
    int status = STATUS_EMPTY;
    long long divisor = nanosecond ? 1 : 1000;
    for (;;) {
        if (self->cursor >= self->count) {
            if (self->short_batch) {  /* the last receive emptied the socket: write now */
                self->short_batch = 0;
                self->count = self->cursor = 0;
                status = STATUS_EMPTY;
                break;
            }
            reset_headers(self);
            int got;
            if (wait) {  /* one blocking receive per call, at most: then drain what is queued */
                wait = 0;
                Py_BEGIN_ALLOW_THREADS
                got = recvmmsg(self->fd, self->msgs, self->vlen, MSG_WAITFORONE, NULL);
                Py_END_ALLOW_THREADS
                struct timespec now;
                clock_gettime(CLOCK_REALTIME, &now);
                batch_ns = (long long)now.tv_sec * NS + now.tv_nsec;
            } else {
                got = recvmmsg(self->fd, self->msgs, self->vlen, MSG_DONTWAIT, NULL);
            }
            if (got < 0) {
                self->count = self->cursor = 0;
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                    status = STATUS_EMPTY;
                    break;
                }
                PyErr_SetFromErrno(PyExc_OSError);
                return -1;
            }
            self->count = (unsigned)got;
            self->cursor = 0;
            self->short_batch = (unsigned)got < self->vlen;
            if (got == 0) {
                self->short_batch = 0;
                status = STATUS_EMPTY;
                break;
            }
        }
        unsigned i = self->cursor;
        struct mmsghdr *m = &self->msgs[i];
        long long ts = batch_ns;
        read_control(self, &m->msg_hdr, &ts, &tally->drops);
        if (senders != Py_None) {
            unsigned char key[16];
            int key_len = sender_key(&self->names[i], m->msg_hdr.msg_namelen, key);
            int ok = sender_verdict(self, senders, key, key_len);
            if (ok == -2)
                return -1;
            if (ok == -1) {
                self->pending_ns = ts;
                status = STATUS_PENDING;
                break;
            }
            if (ok == 0) {
                tally->not_allowed++;
                tally->received++;
                self->cursor++;
                continue;
            }
        }
        const unsigned char *data = self->slots + (size_t)i * SLOT;
        unsigned len = m->msg_len;
        if (!fast || len < FAST_LEN || memcmp(data, FAST_HEADER, FAST_LEN) != 0) {
            self->pending_ns = ts;
            status = STATUS_PENDING;
            break;
        }
        Py_ssize_t frame_len = (Py_ssize_t)len - FAST_LEN;
        Py_ssize_t incl = frame_len <= snaplen ? frame_len : snaplen;
        if (pos + RECORD_HEADER + incl > buflen) {
            if (pos == 0) {
                PyErr_SetString(PyExc_ValueError, "output buffer has no room for one record");
                return -1;
            }
            status = STATUS_FULL;
            break;
        }
        if (ts < 0)
            ts = 0;
        else if (ts > MAX_TS)
            ts = MAX_TS;
        unsigned char *rec = buf + pos;
        put_u32le(rec, (uint32_t)(ts / NS));
        put_u32le(rec + 4, (uint32_t)((ts % NS) / divisor));
        put_u32le(rec + 8, (uint32_t)incl);
        put_u32le(rec + 12, (uint32_t)frame_len);
        memcpy(rec + RECORD_HEADER, data + FAST_LEN, (size_t)incl);
        pos += RECORD_HEADER + incl;
        tally->count++;
        tally->received++;
        self->cursor++;
        if (pos > limit) {
            status = STATUS_FULL;
            break;
        }
    }
    *pos_io = pos;
    return status;
}

static int check_senders(PyObject *senders) {
    if (senders != Py_None && !PyDict_Check(senders)) {
        PyErr_SetString(PyExc_TypeError, "senders must be a dict or None");
        return -1;
    }
    return 0;
}

static PyObject *Batcher_drain_into(Batcher *self, PyObject *args) {
    Py_buffer out;
    Py_ssize_t pos, limit, snaplen;
    long long batch_ns;
    int nanosecond, fast;
    PyObject *senders;
    int wait = 0;
    if (!self->msgs) {
        PyErr_SetString(PyExc_RuntimeError, "Batcher is not initialised");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "w*nnLpnpO|p", &out, &pos, &limit, &batch_ns, &nanosecond, &snaplen, &fast, &senders, &wait))
        return NULL;
    if (check_senders(senders) < 0 || pos < 0 || pos > out.len || snaplen < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "pos or snaplen out of range");
        PyBuffer_Release(&out);
        return NULL;
    }
    Tally tally = {0, 0, 0, 0};
    int status = drain_core(self, out.buf, out.len, &pos, limit, batch_ns, nanosecond, snaplen, fast, senders, wait, &tally);
    PyBuffer_Release(&out);
    if (status < 0)
        return NULL;
    return Py_BuildValue("(nnnnkn)", pos, tally.count, tally.received, tally.not_allowed, (unsigned long)tally.drops,
                         (Py_ssize_t)status);
}

/* Write all of buf to fd (a short write or EAGAIN waits for room); 0, or the errno that stopped it. */
static int write_all(int fd, const unsigned char *buf, Py_ssize_t len, Py_ssize_t *done) {
    *done = 0;
    while (*done < len) {
        ssize_t n;
        Py_BEGIN_ALLOW_THREADS
        n = write(fd, buf + *done, (size_t)(len - *done));
        Py_END_ALLOW_THREADS
        if (n >= 0) {
            *done += n;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            Py_BEGIN_ALLOW_THREADS
            poll(&p, 1, 1000);
            Py_END_ALLOW_THREADS
            continue;
        }
        return errno;
    }
    return 0;
}

static double monotonic_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

PyDoc_STRVAR(pump_doc,
"pump(fd, out, limit, nanosecond, snaplen, fast, senders, seconds)\n"
"-> (records, bytes, received, not_allowed, drops, status, errno)\n\n"
"The whole receive loop for a plain output descriptor: wait for datagrams, append fast-path\n"
"records to out and write them to fd once per drained batch (or when past limit), for up to\n"
"seconds, returning early when a wait ends with nothing (timeout, signal), a datagram needs\n"
"Python (status 2: everything before it is written; call take()), or a write fails (errno\n"
"set; records and bytes count what was written whole).");

static PyObject *Batcher_pump(Batcher *self, PyObject *args) {
    int fd, nanosecond, fast;
    Py_buffer out;
    Py_ssize_t limit, snaplen;
    PyObject *senders;
    double seconds;
    if (!self->msgs) {
        PyErr_SetString(PyExc_RuntimeError, "Batcher is not initialised");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "iw*npnpOd", &fd, &out, &limit, &nanosecond, &snaplen, &fast, &senders, &seconds))
        return NULL;
    if (check_senders(senders) < 0) {
        PyBuffer_Release(&out);
        return NULL;
    }
    Py_ssize_t written = 0, bytes = 0, received = 0, not_allowed = 0;
    uint32_t drops = 0;
    int status = STATUS_EMPTY, error = 0;
    double deadline = monotonic_s() + seconds;
    for (;;) {
        Tally tally = {0, 0, 0, 0};
        Py_ssize_t pos = 0;
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        status = drain_core(self, out.buf, out.len, &pos, limit, (long long)now.tv_sec * NS + now.tv_nsec,
                            nanosecond, snaplen, fast, senders, 1, &tally);
        if (status < 0) {
            PyBuffer_Release(&out);
            return NULL;
        }
        received += tally.received;
        not_allowed += tally.not_allowed;
        if (tally.drops > drops)
            drops = tally.drops;
        if (pos) {
            Py_ssize_t done;
            error = write_all(fd, out.buf, pos, &done);
            if (error) {  /* whole records written before the error still count */
                const unsigned char *p = out.buf;
                Py_ssize_t at = 0;
                while (at + RECORD_HEADER <= done) {
                    Py_ssize_t end = at + RECORD_HEADER + (Py_ssize_t)((uint32_t)p[at + 8] | (uint32_t)p[at + 9] << 8 |
                                                                       (uint32_t)p[at + 10] << 16 | (uint32_t)p[at + 11] << 24);
                    if (end > done)
                        break;
                    written++;
                    at = end;
                }
                bytes += at;
                break;
            }
            written += tally.count;
            bytes += pos;
        }
        if (status == STATUS_PENDING || (status == STATUS_EMPTY && tally.received == 0) || monotonic_s() >= deadline)
            break;
    }
    PyBuffer_Release(&out);
    return Py_BuildValue("(nnnnkni)", written, bytes, received, not_allowed, (unsigned long)drops, (Py_ssize_t)status,
                         error);
}

/* --fanout: defined with the flow hash below */
static Py_ssize_t assign_owners(const unsigned char *p, Py_ssize_t total, long linktype, long consumers,
                                unsigned short *owner, Py_ssize_t *sizes, Py_ssize_t *counts);
static void copy_to_owners(const unsigned char *p, Py_ssize_t records, const unsigned short *owner,
                           unsigned char **cursor);

#define MAX_CONSUMERS 1024

PyDoc_STRVAR(pump_split_doc,
"pump_split(fds, out, parts, limit, nanosecond, snaplen, fast, senders, seconds, linktype)\n"
"-> (records, bytes, received, not_allowed, drops, status, errno, leftovers)\n\n"
"pump() for --exec consumers: fds holds one pipe per consumer. With one, each drained batch\n"
"is written from out; with several, it is cut by the symmetric flow hash into parts (a\n"
"writable buffer at least as long as out; consumer c's records lie together, in arrival\n"
"order) and each consumer's share is written to its pipe. When a write fails, the loop stops\n"
"and leftovers lists what was not delivered as (consumer, offset, length, count, done)\n"
"tuples -- offsets into out with one consumer, into parts with several; done is how much of\n"
"that share the failed consumer took (0 for the shares after it). records and bytes count\n"
"the shares written whole. Otherwise as pump().");

static PyObject *Batcher_pump_split(Batcher *self, PyObject *args) {
    PyObject *fd_list, *senders, *result = NULL, *leftovers = NULL;
    Py_buffer out, parts;
    Py_ssize_t limit, snaplen;
    int nanosecond, fast;
    double seconds;
    long linktype;
    if (!self->msgs) {
        PyErr_SetString(PyExc_RuntimeError, "Batcher is not initialised");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "Ow*w*npnpOdl", &fd_list, &out, &parts, &limit, &nanosecond, &snaplen, &fast,
                          &senders, &seconds, &linktype))
        return NULL;
    int *fds = NULL;
    unsigned short *owner = NULL;
    Py_ssize_t *sizes = NULL, *counts = NULL, *starts = NULL;
    unsigned char **cursor = NULL;
    PyObject *fd_seq = PySequence_Fast(fd_list, "fds must be a sequence of descriptors");
    if (!fd_seq || check_senders(senders) < 0)
        goto done;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fd_seq);
    if (n < 1 || n > MAX_CONSUMERS) {
        PyErr_Format(PyExc_ValueError, "fds must hold 1..%d descriptors", MAX_CONSUMERS);
        goto done;
    }
    if (n > 1 && parts.len < out.len) {
        PyErr_SetString(PyExc_ValueError, "parts must be at least as long as out");
        goto done;
    }
    fds = PyMem_Calloc((size_t)n, sizeof(int));
    sizes = PyMem_Calloc((size_t)n, sizeof(Py_ssize_t));
    counts = PyMem_Calloc((size_t)n, sizeof(Py_ssize_t));
    starts = PyMem_Calloc((size_t)n, sizeof(Py_ssize_t));
    cursor = PyMem_Calloc((size_t)n, sizeof(unsigned char *));
    owner = n > 1 ? PyMem_Malloc((size_t)(out.len / RECORD_HEADER + 1) * sizeof(unsigned short)) : NULL;
    if (!fds || !sizes || !counts || !starts || !cursor || (n > 1 && !owner)) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t c = 0; c < n; c++) {
        fds[c] = PyLong_AsLong(PySequence_Fast_GET_ITEM(fd_seq, c));
        if (fds[c] == -1 && PyErr_Occurred())
            goto done;
    }
    leftovers = PyList_New(0);
    if (!leftovers)
        goto done;
    Py_ssize_t written = 0, bytes = 0, received = 0, not_allowed = 0;
    uint32_t drops = 0;
    int status = STATUS_EMPTY, error = 0;
    double deadline = monotonic_s() + seconds;
    for (;;) {
        Tally tally = {0, 0, 0, 0};
        Py_ssize_t pos = 0;
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        status = drain_core(self, out.buf, out.len, &pos, limit, (long long)now.tv_sec * NS + now.tv_nsec,
                            nanosecond, snaplen, fast, senders, 1, &tally);
        if (status < 0)
            goto done;
        received += tally.received;
        not_allowed += tally.not_allowed;
        if (tally.drops > drops)
            drops = tally.drops;
        if (pos) {
            const unsigned char *base = out.buf;
            if (n == 1) {
                starts[0] = 0;
                sizes[0] = pos;
                counts[0] = tally.count;
            } else {  /* cut by flow: consumer c's share at starts[c] in parts */
                memset(sizes, 0, (size_t)n * sizeof(Py_ssize_t));
                memset(counts, 0, (size_t)n * sizeof(Py_ssize_t));
                Py_ssize_t records = assign_owners(out.buf, pos, linktype, n, owner, sizes, counts);
                Py_ssize_t at = 0;
                for (Py_ssize_t c = 0; c < n; c++) {
                    starts[c] = at;
                    cursor[c] = (unsigned char *)parts.buf + at;
                    at += sizes[c];
                }
                copy_to_owners(out.buf, records, owner, cursor);
                base = parts.buf;
            }
            for (Py_ssize_t c = 0; c < n; c++) {
                if (!counts[c])
                    continue;
                Py_ssize_t done_bytes;
                error = write_all(fds[c], base + starts[c], sizes[c], &done_bytes);
                if (!error) {
                    written += counts[c];
                    bytes += sizes[c];
                    continue;
                }
                for (Py_ssize_t k = c; k < n; k++) {  /* the failed share and those not tried */
                    if (!counts[k])
                        continue;
                    PyObject *item = Py_BuildValue("(nnnnn)", k, starts[k], sizes[k], counts[k],
                                                   k == c ? done_bytes : (Py_ssize_t)0);
                    if (!item || PyList_Append(leftovers, item) < 0) {
                        Py_XDECREF(item);
                        goto done;
                    }
                    Py_DECREF(item);
                }
                break;
            }
            if (error)
                break;
        }
        if (status == STATUS_PENDING || (status == STATUS_EMPTY && tally.received == 0) || monotonic_s() >= deadline)
            break;
    }
    result = Py_BuildValue("(nnnnkniO)", written, bytes, received, not_allowed, (unsigned long)drops,
                           (Py_ssize_t)status, error, leftovers);
done:
    Py_XDECREF(leftovers);
    Py_XDECREF(fd_seq);
    PyMem_Free(fds);
    PyMem_Free(sizes);
    PyMem_Free(counts);
    PyMem_Free(starts);
    PyMem_Free(cursor);
    PyMem_Free(owner);
    PyBuffer_Release(&out);
    PyBuffer_Release(&parts);
    return result;
}

PyDoc_STRVAR(take_doc,
"take() -> (data, sender_key, received_ns): the pending datagram (after status 2); the next\n"
"drain_into() continues after it.");

static PyObject *Batcher_take(Batcher *self, PyObject *Py_UNUSED(ignored)) {
    if (!self->msgs || self->cursor >= self->count) {
        PyErr_SetString(PyExc_RuntimeError, "no pending datagram");
        return NULL;
    }
    unsigned i = self->cursor++;
    unsigned char key[16];
    int key_len = sender_key(&self->names[i], self->msgs[i].msg_hdr.msg_namelen, key);
    return Py_BuildValue("(y#y#L)", (const char *)(self->slots + (size_t)i * SLOT),
                         (Py_ssize_t)self->msgs[i].msg_len, (const char *)key, (Py_ssize_t)key_len,
                         self->pending_ns);
}

static PyMethodDef Batcher_methods[] = {
    {"drain_into", (PyCFunction)Batcher_drain_into, METH_VARARGS, drain_into_doc},
    {"take", (PyCFunction)Batcher_take, METH_NOARGS, take_doc},
    {"pump", (PyCFunction)Batcher_pump, METH_VARARGS, pump_doc},
    {"pump_split", (PyCFunction)Batcher_pump_split, METH_VARARGS, pump_split_doc},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject BatcherType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tzsp._fastrecv.Batcher",
    .tp_doc = PyDoc_STR("recvmmsg batches turned into pcap records (see tzsp.batcher.PyBatcher)"),
    .tp_basicsize = sizeof(Batcher),
    .tp_itemsize = 0,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Batcher_init,
    .tp_dealloc = (destructor)Batcher_dealloc,
    .tp_methods = Batcher_methods,
};

/* ---------------------------------------------------------------- --fanout: flow hash
 * Mirrors tzsp.fanout (flow_key, consumer_for, split_by_consumer) byte for byte; tests
 * compare the two on crafted and random frames. */

static uint32_t crc_table[256];

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc32_of(const unsigned char *p, size_t n) { /* the same CRC-32 as zlib.crc32 */
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++)
        c = crc_table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

static unsigned u16be(const unsigned char *p) { return (unsigned)p[0] << 8 | p[1]; }

static int is_raw_linktype(long linktype) {
    return linktype == 101 || linktype == 12 || linktype == 14 || linktype == 228 || linktype == 229;
}

/* Where the IP header starts, or -1. */
static Py_ssize_t network_offset(const unsigned char *f, Py_ssize_t len, long linktype) {
    if (is_raw_linktype(linktype))
        return 0;
    if (linktype != 1 || len < 14)
        return -1;
    Py_ssize_t off = 12;
    unsigned type = u16be(f + off);
    for (int tags = 0; (type == 0x8100 || type == 0x88A8 || type == 0x9100) && tags < 4; tags++) {
        off += 4;
        if (len < off + 2)
            return -1;
        type = u16be(f + off);
    }
    off += 2;
    if (type == 0x8864) { /* PPPoE session */
        if (len < off + 8)
            return -1;
        unsigned protocol = u16be(f + off + 6);
        return (protocol == 0x0021 || protocol == 0x0057) ? off + 8 : -1;
    }
    return (type == 0x0800 || type == 0x86DD) ? off : -1;
}

static int has_ports(unsigned protocol) {
    return protocol == 6 || protocol == 17 || protocol == 33 || protocol == 132 || protocol == 136;
}

/* Build the key into key[] (at most 1 + 2 * 18 bytes); returns its length, or 0 for none. */
static size_t endpoints_key(const unsigned char *f, Py_ssize_t len, unsigned protocol, const unsigned char *src,
                            const unsigned char *dst, size_t alen, Py_ssize_t transport, int fragmented,
                            unsigned char *key) {
    unsigned char a[18], b[18];
    size_t n = alen;
    memcpy(a, src, alen);
    memcpy(b, dst, alen);
    if (fragmented) {
        protocol = 0xFF;
    } else if (has_ports(protocol) && len >= transport + 4) {
        memcpy(a + alen, f + transport, 2);
        memcpy(b + alen, f + transport + 2, 2);
        n += 2;
    }
    int swap = memcmp(a, b, n) > 0;
    key[0] = (unsigned char)protocol;
    memcpy(key + 1, swap ? b : a, n);
    memcpy(key + 1 + n, swap ? a : b, n);
    return 1 + 2 * n;
}

static size_t flow_key(const unsigned char *f, Py_ssize_t len, long linktype, unsigned char *key) {
    Py_ssize_t off = network_offset(f, len, linktype);
    if (off < 0 || len <= off)
        return 0;
    unsigned version = f[off] >> 4;
    if (version == 4) {
        if (len < off + 20)
            return 0;
        Py_ssize_t header = (Py_ssize_t)(f[off] & 0x0F) * 4;
        if (header < 20)
            return 0;
        int fragmented = (u16be(f + off + 6) & 0x3FFF) != 0;
        return endpoints_key(f, len, f[off + 9], f + off + 12, f + off + 16, 4, off + header, fragmented, key);
    }
    if (version == 6) {
        if (len < off + 40)
            return 0;
        unsigned protocol = f[off + 6];
        Py_ssize_t at = off + 40;
        int fragmented = 0;
        for (int i = 0; i < 8; i++) {
            if (protocol == 44) {
                fragmented = 1;
                break;
            }
            if (protocol != 0 && protocol != 43 && protocol != 60 && protocol != 51)
                break;
            if (len < at + 2) {
                fragmented = 1;
                break;
            }
            Py_ssize_t length = protocol == 51 ? ((Py_ssize_t)f[at + 1] + 2) * 4 : ((Py_ssize_t)f[at + 1] + 1) * 8;
            protocol = f[at];
            at += length;
        }
        return endpoints_key(f, len, protocol, f + off + 8, f + off + 24, 16, at, fragmented, key);
    }
    return 0;
}

static long consumer_of(const unsigned char *f, Py_ssize_t len, long linktype, long consumers) {
    if (consumers <= 1)
        return 0;
    unsigned char key[1 + 2 * 18];
    size_t n = flow_key(f, len, linktype, key);
    return n ? (long)(crc32_of(key, n) % (uint32_t)consumers) : 0;
}

PyDoc_STRVAR(split_records_doc,
"split_records(records, linktype, consumers) -> [(bytearray, count), ...]\n\n"
"Cut a batch of pcap records into one batch per consumer by the symmetric flow hash\n"
"(tzsp.fanout.consumer_for), keeping their order; a cut-off record at the end is dropped.");

static uint32_t record_incl(const unsigned char *p) {
    return (uint32_t)p[8] | (uint32_t)p[9] << 8 | (uint32_t)p[10] << 16 | (uint32_t)p[11] << 24;
}

/* First pass: each whole record's consumer into owner[], each consumer's bytes and records
 * added to sizes[] and counts[]; returns the number of whole records (a cut-off one at the
 * end is left out). owner needs total / RECORD_HEADER + 1 entries. */
static Py_ssize_t assign_owners(const unsigned char *p, Py_ssize_t total, long linktype, long consumers,
                                unsigned short *owner, Py_ssize_t *sizes, Py_ssize_t *counts) {
    Py_ssize_t records = 0, off = 0;
    while (off + RECORD_HEADER <= total) {
        uint32_t incl = record_incl(p + off);
        Py_ssize_t end = off + RECORD_HEADER + (Py_ssize_t)incl;
        if (end > total)
            break;
        long c = consumer_of(p + off + RECORD_HEADER, (Py_ssize_t)incl, linktype, consumers);
        owner[records++] = (unsigned short)c;
        sizes[c] += end - off;
        counts[c]++;
        off = end;
    }
    return records;
}

/* Second pass: copy each record to its consumer's cursor (advanced past it). */
static void copy_to_owners(const unsigned char *p, Py_ssize_t records, const unsigned short *owner,
                           unsigned char **cursor) {
    Py_ssize_t off = 0;
    for (Py_ssize_t r = 0; r < records; r++) {
        size_t size = RECORD_HEADER + (size_t)record_incl(p + off);
        memcpy(cursor[owner[r]], p + off, size);
        cursor[owner[r]] += size;
        off += (Py_ssize_t)size;
    }
}

static PyObject *split_records(PyObject *Py_UNUSED(module), PyObject *args) {
    Py_buffer in;
    long linktype, consumers;
    if (!PyArg_ParseTuple(args, "y*ll", &in, &linktype, &consumers))
        return NULL;
    if (consumers < 1 || consumers > MAX_CONSUMERS) {
        PyBuffer_Release(&in);
        PyErr_Format(PyExc_ValueError, "consumers must be 1..%d", MAX_CONSUMERS);
        return NULL;
    }
    Py_ssize_t *sizes = PyMem_Calloc((size_t)consumers, sizeof(Py_ssize_t));
    Py_ssize_t *counts = PyMem_Calloc((size_t)consumers, sizeof(Py_ssize_t));
    unsigned short *owner = PyMem_Malloc((size_t)(in.len / RECORD_HEADER + 1) * sizeof(unsigned short));
    unsigned char **cursor = PyMem_Calloc((size_t)consumers, sizeof(unsigned char *));
    PyObject *result = NULL;
    if (!sizes || !counts || !owner || !cursor) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t records = assign_owners(in.buf, in.len, linktype, consumers, owner, sizes, counts);
    result = PyList_New(consumers);
    if (!result)
        goto done;
    for (long c = 0; c < consumers; c++) {
        PyObject *part = PyByteArray_FromStringAndSize(NULL, sizes[c]);
        PyObject *item = part ? Py_BuildValue("(Nn)", part, counts[c]) : NULL;
        if (!item) {
            Py_CLEAR(result);
            goto done;
        }
        cursor[c] = (unsigned char *)PyByteArray_AS_STRING(part);
        PyList_SET_ITEM(result, c, item);
    }
    copy_to_owners(in.buf, records, owner, cursor);
done:
    PyMem_Free(sizes);
    PyMem_Free(counts);
    PyMem_Free(owner);
    PyMem_Free(cursor);
    PyBuffer_Release(&in);
    return result;
}

static PyMethodDef module_methods[] = {
    {"split_records", split_records, METH_VARARGS, split_records_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef fastrecv_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "tzsp._fastrecv",
    .m_doc = "Optional C accelerator for tzspd's receive loop.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__fastrecv(void) {
    crc_init();
    if (PyType_Ready(&BatcherType) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&fastrecv_module);
    if (!module)
        return NULL;
    Py_INCREF(&BatcherType);
    if (PyModule_AddObject(module, "Batcher", (PyObject *)&BatcherType) < 0) {
        Py_DECREF(&BatcherType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
