#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "CInetSupport.h"

_Static_assert(sizeof(((struct inetkit_datagram *)0)->address) == sizeof(struct sockaddr_storage), "address holds a sockaddr_storage");

#define INETKIT_MAX_BATCH 64

/// One message of a batch: one address and one buffer, no control data.
static void fill_message(struct mmsghdr *message, struct iovec *vector, void *name, socklen_t name_length, void *data, size_t length) {
    vector->iov_base = data;
    vector->iov_len = length;
    message->msg_hdr.msg_name = name;
    message->msg_hdr.msg_namelen = name_length;
    message->msg_hdr.msg_iov = vector;
    message->msg_hdr.msg_iovlen = 1;
    message->msg_hdr.msg_control = 0;
    message->msg_hdr.msg_controllen = 0;
    message->msg_hdr.msg_flags = 0;
    message->msg_len = 0;
}

int inetkit_receive_datagrams(int fd, struct inetkit_datagram *datagrams, unsigned char *area, unsigned int size, unsigned int count) {
    struct mmsghdr messages[INETKIT_MAX_BATCH];
    struct iovec vectors[INETKIT_MAX_BATCH];
    if (count > INETKIT_MAX_BATCH) count = INETKIT_MAX_BATCH;
    for (unsigned int i = 0; i < count; i++) {
        fill_message(&messages[i], &vectors[i], datagrams[i].address, sizeof(datagrams[i].address), area + (size_t)i * size, size);
    }
    int received = recvmmsg(fd, messages, count, MSG_DONTWAIT, 0);
    for (int i = 0; i < received; i++) {
        datagrams[i].address_length = messages[i].msg_hdr.msg_namelen;
        datagrams[i].length = messages[i].msg_len;
        datagrams[i].truncated = (messages[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
    }
    return received;
}

int inetkit_send_datagrams(int fd, struct inetkit_reply *replies, unsigned int count) {
    struct mmsghdr messages[INETKIT_MAX_BATCH];
    struct iovec vectors[INETKIT_MAX_BATCH];
    if (count > INETKIT_MAX_BATCH) count = INETKIT_MAX_BATCH;
    for (unsigned int i = 0; i < count; i++) {
        fill_message(&messages[i], &vectors[i], (void *)replies[i].address, replies[i].address_length, (void *)replies[i].data, replies[i].length);
        replies[i].sent = 0;
    }
    unsigned int done = 0;
    int sent = 0;
    while (done < count) {
        int result = sendmmsg(fd, messages + done, count - done, MSG_DONTWAIT);
        if (result > 0) {
            for (int i = 0; i < result; i++) replies[done + i].sent = 1;
            done += result;
            sent += result;
            continue;
        }
        if (result < 0 && errno == EINTR) continue;
        // The send buffer is full: the rest is dropped (never queued).
        if (result < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) break;
        // The kernel refused this one reply (e.g. no route to its address): skip it.
        done += 1;
    }
    return sent;
}

int inetkit_wake_descriptor(void) {
    return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

void inetkit_wake(int wake) {
    uint64_t one = 1;
    ssize_t written = write(wake, &one, sizeof(one));
    (void)written;
}

int inetkit_wait_readable(int fd, int wake) {
    struct pollfd descriptors[2] = {
        { .fd = fd, .events = POLLIN, .revents = 0 },
        { .fd = wake, .events = POLLIN, .revents = 0 },
    };
    for (;;) {
        int ready = poll(descriptors, 2, -1);
        if (ready < 0 && errno == EINTR) continue;
        if (ready < 0) return -1;
        if (descriptors[1].revents) return 0;
        return 1;
    }
}

void inetkit_name_thread(const char *name) {
    char cut[16];
    size_t length = 0;
    while (name[length] && length < 15) { cut[length] = name[length]; length++; }
    cut[length] = 0;
    pthread_setname_np(pthread_self(), cut);
}
