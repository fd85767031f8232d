#define _GNU_SOURCE
#include "CInetSupport.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/socket.h>

static void write_pid(char *slot, pid_t pid) {
    // slot points just past "LISTEN_PID="; digits written without any allocation.
    char digits[24];
    int count = 0;
    unsigned long value = (unsigned long)pid;
    do {
        digits[count++] = (char)('0' + value % 10);
        value /= 10;
    } while (value > 0 && count < 20);
    for (int i = 0; i < count; i++) slot[i] = digits[count - 1 - i];
    slot[count] = '\0';
}

pid_t inetkit_spawn(const char *path, char *const argv[], char *const envp[],
                    const int *fds, int nfds, int output_fd, int listen_pid_index,
                    int death_signal, int64_t uid, int64_t gid) {
    for (int i = 0; i < nfds; i++) {
        // The sources must not collide with the targets 3..3+nfds-1 (the caller keeps its
        // sockets above them); checked here, before the fork, where an error can be reported.
        if (fds[i] >= 0 && fds[i] < 3 + nfds) { errno = EINVAL; return -1; }
    }
    if (output_fd >= 0 && output_fd < 3 + nfds) { errno = EINVAL; return -1; }
    // The binary is opened here, with the caller's rights: a child that becomes an account
    // which may not walk the path to it (a clone in a 0700 folder, root's home) still starts
    // it, by the descriptor (execveat with AT_EMPTY_PATH needs only the file's own x bit).
    int opened = open(path, O_PATH | O_CLOEXEC);
    if (opened < 0) return -1;
    // Above the targets 3..3+nfds-1, so the dup2s below cannot land on it.
    int exe = fcntl(opened, F_DUPFD_CLOEXEC, 3 + nfds);
    close(opened);
    if (exe < 0) return -1;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0) {
        int saved = errno;
        close(exe);
        errno = saved;
        return pid;
    }

    // The child: only async-signal-safe calls from here to execve.
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        signal(sig, SIG_DFL);
    }
    // A process group of its own: the terminal's ^C reaches the supervisor alone, which
    // stops the workers in order.
    setpgid(0, 0);
    // Raw system calls: the child has one thread, and these change exactly it.
    if (gid >= 0) {
        if (syscall(SYS_setgroups, 0, NULL) != 0) _exit(125);
        if (syscall(SYS_setresgid, (gid_t)gid, (gid_t)gid, (gid_t)gid) != 0) _exit(125);
    }
    if (uid >= 0) {
        if (syscall(SYS_setresuid, (uid_t)uid, (uid_t)uid, (uid_t)uid) != 0) _exit(125);
        if (uid != 0 && syscall(SYS_setresuid, 0, 0, 0) == 0) _exit(125);
    }
    if (death_signal > 0) {
        prctl(PR_SET_PDEATHSIG, death_signal);
        if (getppid() != parent) _exit(1);
    }
    if (output_fd >= 0) {
        dup2(output_fd, 1);
        dup2(output_fd, 2);
    }
    for (int i = 0; i < nfds; i++) {
        if (dup2(fds[i], 3 + i) < 0) _exit(126);
        // dup2 leaves the new descriptor without FD_CLOEXEC.
    }
    if (listen_pid_index >= 0) {
        char *entry = envp[listen_pid_index];
        if (strncmp(entry, "LISTEN_PID=", 11) == 0) write_pid(entry + 11, getpid());
    }
    syscall(SYS_execveat, exe, "", argv, envp, AT_EMPTY_PATH);
    _exit(127);
}

int inetkit_pass_credentials(int fd) {
    int one = 1;
    return setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
}

ssize_t inetkit_recv_from_pid(int fd, void *buffer, size_t length, pid_t *pid) {
    struct iovec vector = { .iov_base = buffer, .iov_len = length };
    union {
        struct cmsghdr header;
        char space[CMSG_SPACE(sizeof(struct ucred))];
    } control;
    struct msghdr message;
    memset(&message, 0, sizeof message);
    message.msg_iov = &vector;
    message.msg_iovlen = 1;
    message.msg_control = control.space;
    message.msg_controllen = sizeof control.space;
    *pid = -1;
    ssize_t count = recvmsg(fd, &message, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (count < 0) return count;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&message); c != NULL; c = CMSG_NXTHDR(&message, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
            struct ucred credentials;
            memcpy(&credentials, CMSG_DATA(c), sizeof credentials);
            *pid = credentials.pid;
        }
    }
    return count;
}

int inetkit_pipe(int fds[2], int flags) {
    return pipe2(fds, flags);
}

int inetkit_memfd(const char *name) {
    return memfd_create(name, MFD_CLOEXEC);
}

int inetkit_keep_on_exec(int fd) {
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0) return -1;
    return fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
}

int inetkit_set_death_signal(int signal) {
    return prctl(PR_SET_PDEATHSIG, signal);
}

static volatile int signal_pipe_fd = -1;

static void forward_signal(int sig) {
    int saved = errno;
    unsigned char byte = (unsigned char)sig;
    if (signal_pipe_fd >= 0) (void)!write(signal_pipe_fd, &byte, 1);
    errno = saved;
}

int inetkit_forward_signals(int write_fd, const int *signals, int count) {
    signal_pipe_fd = write_fd;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = forward_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    for (int i = 0; i < count; i++) {
        if (sigaction(signals[i], &action, NULL) != 0) return -1;
    }
    sigset_t set;
    sigemptyset(&set);
    for (int i = 0; i < count; i++) sigaddset(&set, signals[i]);
    return pthread_sigmask(SIG_UNBLOCK, &set, NULL) == 0 ? 0 : -1;
}

int inetkit_pin_thread_to_cpu(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0 ? 0 : -1;
}

int inetkit_allowed_cpus(int *cpus, int capacity) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return -1;
    int count = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && count < capacity; cpu++) {
        if (CPU_ISSET(cpu, &set)) cpus[count++] = cpu;
    }
    return count;
}
