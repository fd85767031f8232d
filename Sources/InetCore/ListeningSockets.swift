import CInetSupport
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A listening socket held as a plain descriptor: bound by the supervisor (as root where the
/// port needs it), or inherited from systemd or the supervisor, before any event loop has it.
public struct ListeningSocket: Sendable, Equatable {
    public var descriptor: Int32
    /// The service it belongs to (systemd's `FileDescriptorName=`).
    public var service: String
    public var transport: Transport
    public var address: BindAddress
    public var port: Int

    public var display: String { address.display(port: port) }

    /// Reads transport, address and port off the descriptor itself.
    public static func describe(_ fd: Int32, service: String) -> ListeningSocket? {
        var type: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == 0 else { return nil }
        let transport: Transport
        switch type {
        case Int32(SOCK_STREAM.rawValue): transport = .tcp
        case Int32(SOCK_DGRAM.rawValue): transport = .udp
        default: return nil
        }
        var storage = sockaddr_storage()
        var size = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &size) == 0 }
        }
        guard ok else { return nil }
        let address: SocketAddress
        switch Int32(storage.ss_family) {
        case AF_INET:
            address = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { SocketAddress($0.pointee, host: "") } }
        case AF_INET6:
            address = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { SocketAddress($0.pointee, host: "") } }
        default:
            return nil
        }
        guard let host = address.ipAddress, let port = address.port else { return nil }
        return ListeningSocket(descriptor: fd, service: service, transport: transport, address: BindAddress(host: host, optional: false), port: port)
    }

    public func close() {
        _ = Glibc.close(descriptor)
    }
}

/// The sockets a process was started with, by systemd's socket-activation convention:
/// `LISTEN_PID` (this process), `LISTEN_FDS` (how many, from descriptor 3) and
/// `LISTEN_FDNAMES` (colon-separated; each the name of the service the socket is for).
public enum SocketActivation {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// nil when the process was not socket-activated.
    public static func inherited(environment: [String: String]) throws(Failure) -> [ListeningSocket]? {
        guard let countText = environment["LISTEN_FDS"] else { return nil }
        if let pidText = environment["LISTEN_PID"], Int32(pidText) != getpid() { return nil }
        guard let count = Int(countText), (0...1024).contains(count) else {
            throw Failure(description: "LISTEN_FDS='\(countText)' is not a count of descriptors")
        }
        let names = environment["LISTEN_FDNAMES"].map { $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init) } ?? []
        var sockets: [ListeningSocket] = []
        for index in 0..<count {
            let fd = Int32(3 + index)
            let name = index < names.count ? names[index] : "unknown"
            guard let socket = ListeningSocket.describe(fd, service: name) else {
                throw Failure(description: "descriptor \(fd) (\(name)) is not a TCP or UDP socket")
            }
            // Keep the sockets away from the children this process starts.
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            sockets.append(socket)
        }
        return sockets
    }

    /// Removes the variables so that children do not take the sockets for theirs.
    public static func clearEnvironment() {
        unsetenv("LISTEN_PID")
        unsetenv("LISTEN_FDS")
        unsetenv("LISTEN_FDNAMES")
    }
}

/// Binds listening sockets as plain descriptors (the supervisor's work): TCP sockets listening
/// with a backlog of 511, UDP sockets with one more on the same port per core (SO_REUSEPORT),
/// each kept at a descriptor of `minimumDescriptor` or above (clear of the 3, 4, … a worker
/// receives them at).
public enum SocketBinder {
    public static let minimumDescriptor: Int32 = 256
    public static let backlog: Int32 = 511

    /// One socket, bound (and listening for TCP). Port 0 picks a free port.
    public static func bind(service: String, transport: Transport, address: BindAddress, port: Int, receiveBuffer: Int = 0) throws(BindError) -> ListeningSocket {
        func failure(_ what: String, _ code: Int32) -> BindError {
            var reason = String(cString: strerror(code))
            if code == EACCES { reason += " (ports below 1024 need root or CAP_NET_BIND_SERVICE; try --port-offset 10000)" }
            if code == EADDRINUSE { reason += " (another program holds this port)" }
            if what != "bind" { reason = "\(what): \(reason)" }
            return BindError(service: service, transport: transport, address: address.display(port: port), reason: reason)
        }
        guard let socketAddress = try? SocketAddress(ipAddress: address.host, port: port) else {
            throw BindError(service: service, transport: transport, address: address.display(port: port), reason: "not a numeric address")
        }
        let family: Int32 = socketAddress.protocol == .inet6 ? AF_INET6 : AF_INET
        let type = (transport == .tcp ? Int32(SOCK_STREAM.rawValue) : Int32(SOCK_DGRAM.rawValue)) | Int32(SOCK_CLOEXEC.rawValue)
        let raw = socket(family, type, 0)
        guard raw >= 0 else { throw failure("socket", errno) }
        let fd = fcntl(raw, F_DUPFD_CLOEXEC, minimumDescriptor)
        let dupError = errno
        Glibc.close(raw)
        guard fd >= 0 else { throw failure("fcntl", dupError) }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if transport == .udp { _ = setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size)) }
        if transport == .udp, receiveBuffer > 0 { setReceiveBuffer(fd, receiveBuffer) }
        if family == AF_INET6 { _ = setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size)) }
        let bound = socketAddress.withSockAddr { pointer, length in Glibc.bind(fd, pointer, socklen_t(length)) }
        if bound != 0 {
            let code = errno
            Glibc.close(fd)
            throw failure("bind", code)
        }
        if transport == .tcp, listen(fd, backlog) != 0 {
            let code = errno
            Glibc.close(fd)
            throw failure("listen", code)
        }
        guard let described = ListeningSocket.describe(fd, service: service) else {
            Glibc.close(fd)
            throw failure("getsockname", errno)
        }
        return ListeningSocket(descriptor: fd, service: service, transport: transport, address: address, port: described.port)
    }

    /// Every socket of one service: each transport on every address, one port for all (with
    /// port 0 the first picks it and the rest follow, retried when another program holds it
    /// on the other transport or address), and `udpSockets` sockets per UDP address.
    /// SO_RCVBUFFORCE where permitted (root), else SO_RCVBUF (capped by net.core.rmem_max); never
    /// lowers what the socket already has.
    public static func setReceiveBuffer(_ fd: Int32, _ bytes: Int) {
        var current: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        // (The kernel reports twice what was asked, its bookkeeping included.)
        if getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &current, &length) == 0, Int(current) / 2 >= bytes { return }
        var wanted = Int32(clamping: bytes)
        if setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &wanted, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &wanted, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    /// `spreadByCPU`: each UDP group hands a datagram to the socket of the CPU receiving it
    /// (else the kernel hashes the source).
    public static func bind(service: String, transports: [Transport], port: Int, addresses: [BindAddress], udpSockets: Int, receiveBuffer: Int = 0,
                            spreadByCPU: Bool = false) throws(BindError) -> [ListeningSocket] {
        var attempt = 0
        while true {
            attempt += 1
            var bound: [ListeningSocket] = []
            var chosen = port
            do {
                for transport in transports {
                    for address in addresses {
                        let first = try bind(service: service, transport: transport, address: address, port: chosen, receiveBuffer: receiveBuffer)
                        bound.append(first)
                        chosen = first.port
                        if transport == .udp {
                            for _ in 1..<max(1, udpSockets) {
                                bound.append(try bind(service: service, transport: .udp, address: address, port: chosen, receiveBuffer: receiveBuffer))
                            }
                            // (Best effort: without it the kernel's hash of the source decides.)
                            if spreadByCPU, udpSockets > 1 { _ = inetkit_reuseport_by_cpu(first.descriptor, UInt32(udpSockets)) }
                        }
                    }
                }
                return bound
            } catch {
                for socket in bound { socket.close() }
                if port == 0, attempt < 10, error.reason.hasPrefix(BindError.addressInUse) { continue }
                throw error
            }
        }
    }
}
