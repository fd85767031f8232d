#include <linux/filter.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "CInetSupport.h"

#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif

int inetkit_reuseport_by_cpu(int fd, unsigned int sockets) {
    if (sockets < 2) return 0;
    // A = the CPU the datagram is being received on; A %= sockets; deliver to socket A of the
    // group (its index in the order the sockets were bound).
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (unsigned int)(SKF_AD_OFF + SKF_AD_CPU)),
        BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, sockets),
        BPF_STMT(BPF_RET | BPF_A, 0),
    };
    struct sock_fprog program = { .len = sizeof(code) / sizeof(code[0]), .filter = code };
    return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &program, sizeof(program));
}

struct inetkit_fprog inetkit_reuseport_cpu_program(unsigned int sockets) {
    struct inetkit_fprog result = { 0, 0 };
    if (sockets < 2) return result;
    // Lives as long as the process: a socket option names it only while it is set, but the
    // caller's event loop sets it later than this returns (a few bytes per UDP listener).
    struct sock_filter *code = malloc(3 * sizeof(struct sock_filter));
    if (!code) return result;
    code[0] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (unsigned int)(SKF_AD_OFF + SKF_AD_CPU));
    code[1] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, sockets);
    code[2] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_A, 0);
    result.len = 3;
    result.filter = code;
    return result;
}
