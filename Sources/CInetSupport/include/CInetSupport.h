#ifndef C_INET_SUPPORT_H
#define C_INET_SUPPORT_H

#include <stdint.h>
#include <sys/types.h>

/// Starts `path` with `argv` and `envp` in a new process, the way systemd starts a
/// socket-activated service: `fds[0..<nfds]` become descriptors 3, 4, … (every other
/// descriptor of the caller is close-on-exec), the signal mask and dispositions are reset,
/// standard output and error go to `output_fd` (when >= 0), and the entry of `envp` at
/// `listen_pid_index` (when >= 0), which must read "LISTEN_PID=" followed by at least 20
/// bytes of room, gets the child's own process id. Between fork and exec only
/// async-signal-safe calls are made. Returns the child's pid, or -1 with errno set.
/// With `uid`/`gid` other than -1 the child becomes that account (supplementary groups
/// cleared, then group, then user, checked) before execve: it never runs as root.
pid_t inetkit_spawn(const char *path, char *const argv[], char *const envp[],
                    const int *fds, int nfds, int output_fd, int listen_pid_index,
                    int death_signal, int64_t uid, int64_t gid);

/// Turns on SO_PASSCRED on a datagram socket, so that `inetkit_recv_from_pid` learns the
/// sender's process id from the kernel; 0 or -1.
int inetkit_pass_credentials(int fd);

/// recvmsg(2) without blocking; `*pid` is the sender's process id as the kernel vouches for
/// it (SCM_CREDENTIALS), or -1 when none came. Returns the byte count or -1.
ssize_t inetkit_recv_from_pid(int fd, void *buffer, size_t length, pid_t *pid);

/// pipe2(2) (flags: O_CLOEXEC, O_NONBLOCK); 0 or -1.
int inetkit_pipe(int fds[2], int flags);

/// memfd_create(2) with MFD_CLOEXEC; -1 with errno on failure.
int inetkit_memfd(const char *name);

/// Clears FD_CLOEXEC on `fd` (for a descriptor passed across exec); 0 or -1.
int inetkit_keep_on_exec(int fd);

/// prctl(PR_SET_PDEATHSIG, signal): 0 or -1.
int inetkit_set_death_signal(int signal);

/// Installs a handler for each of `signals` that writes the signal's number as one byte to
/// `write_fd` (a non-blocking pipe): the self-pipe the supervisor's poll loop reads.
int inetkit_forward_signals(int write_fd, const int *signals, int count);

/// Relaxed atomic operations on 64-bit cells in shared memory.
static inline int64_t inetkit_atomic_add(int64_t *cell, int64_t value) {
    return __atomic_fetch_add(cell, value, __ATOMIC_RELAXED);
}
static inline int64_t inetkit_atomic_load(const int64_t *cell) {
    return __atomic_load_n(cell, __ATOMIC_ACQUIRE);
}
static inline void inetkit_atomic_store(int64_t *cell, int64_t value) {
    __atomic_store_n(cell, value, __ATOMIC_RELEASE);
}
static inline int inetkit_atomic_cas(int64_t *cell, int64_t expected, int64_t desired) {
    return __atomic_compare_exchange_n(cell, &expected, desired, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}
/// Fences for the sequence locks of the event ring: a writer's data after its "being written"
/// mark, a reader's copy before its second look at the sequence.
static inline void inetkit_fence_release(void) { __atomic_thread_fence(__ATOMIC_RELEASE); }
static inline void inetkit_fence_acquire(void) { __atomic_thread_fence(__ATOMIC_ACQUIRE); }

/// Makes the kernel hand each datagram of a SO_REUSEPORT group of `sockets` UDP sockets (bound
/// in order, `fd` one of them) to the socket whose index is the number of the CPU receiving it
/// (modulo `sockets`), instead of hashing its source: every socket's event loop gets a share
/// whatever the number of sources (SO_ATTACH_REUSEPORT_CBPF). 0, or -1 with errno.
int inetkit_reuseport_by_cpu(int fd, unsigned int sockets);

/// The same program as a setsockopt(SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF) value (laid out as
/// struct sock_fprog), for a socket whose descriptor the caller does not hold (SwiftNIO's);
/// its instructions are never freed. `len` 0 when `sockets` < 2.
struct inetkit_fprog { unsigned short len; const void *filter; };
struct inetkit_fprog inetkit_reuseport_cpu_program(unsigned int sockets);
static const int inetkit_so_attach_reuseport_cbpf = 51;

/// Keeps the calling thread on one CPU (`pin_event_loops`, and tests of the CPU-steered
/// sockets); 0 or -1.
int inetkit_pin_thread_to_cpu(int cpu);
/// The CPUs the calling thread may run on (sched_getaffinity), up to `capacity` of them
/// written to `cpus` in order; returns how many, or -1.
int inetkit_allowed_cpus(int *cpus, int capacity);

/// The kernel clock's state (adjtimex(2) without changing anything): returns the clock state
/// (TIME_OK 0, TIME_INS 1, TIME_DEL 2, TIME_OOP 3, TIME_WAIT 4, TIME_ERROR 5) or -1, and the
/// kernel's maximum and estimated error in microseconds.
int inetkit_clock_state(long *max_error_us, long *estimated_error_us);

/// One datagram received by inetkit_receive_datagrams: its source, its length in the caller's
/// area, and whether it was longer than its slot (cut).
struct inetkit_datagram {
    /// A struct sockaddr_storage.
    unsigned char address[128] __attribute__((aligned(8)));
    unsigned int address_length;
    unsigned int length;
    int truncated;
};

/// Up to `count` (at most 64) waiting datagrams in one recvmmsg(2) without blocking, the i-th
/// into `area + i * size`. Returns how many, or -1 with errno (EAGAIN: none waiting).
int inetkit_receive_datagrams(int fd, struct inetkit_datagram *datagrams, unsigned char *area, unsigned int size, unsigned int count);

/// One reply for inetkit_send_datagrams; `sent` is set to 1 once the kernel took it.
struct inetkit_reply {
    /// A struct sockaddr (of `address_length` bytes).
    const void *address;
    unsigned int address_length;
    const void *data;
    unsigned long length;
    int sent;
};

/// Sends up to `count` (at most 64) replies with sendmmsg(2), never blocking: stops at a full
/// send buffer (the rest is not sent) and skips a reply the kernel refuses. Returns how many
/// were sent.
int inetkit_send_datagrams(int fd, struct inetkit_reply *replies, unsigned int count);

/// A descriptor that wakes inetkit_wait_readable (an eventfd), -1 on failure; and the wake.
int inetkit_wake_descriptor(void);
void inetkit_wake(int wake);
/// The current time as a log line starts with it, `2026-12-07T09:13:44.176Z` (24 bytes, UTC,
/// milliseconds), written to `out`; the date and time of day are kept per thread for the second.
void inetkit_log_timestamp(unsigned char *out);

/// Names the calling thread (its first 15 bytes), as top -H and perf show it.
void inetkit_name_thread(const char *name);
/// Waits until `fd` is readable (1) or `wake` was woken (0); -1 on error.
int inetkit_wait_readable(int fd, int wake);

#endif
