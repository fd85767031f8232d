#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import InetCore
import NIOCore

public struct SyslogClientError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The sending side: formats messages (RFC 5424 or RFC 3164) and sends them over UDP, or over
/// TCP with octet counting (RFC 6587 §3.4.1) or LF framing.
public struct SyslogClient {
    public struct Header: Sendable {
        public var facility = 1
        public var severity = 5
        public var hostname = systemHostName()
        public var app = "inetkit"
        public var procid: String? = String(getpid())
        public var msgid: String?
        public var rfc3164 = false

        public init() {}
    }

    /// One message's bytes (no framing). Header fields are cut to their RFC 5424 lengths and
    /// spaces in them replaced, so the message always parses.
    public static func format(_ text: String, header: Header, seconds: Int, microseconds: Int) -> [UInt8] {
        func word(_ value: String?, _ limit: Int) -> String {
            guard let value, !value.isEmpty else { return "-" }
            return String(String(value.unicodeScalars.map { $0.value > 0x20 && $0.value < 0x7F ? Character($0) : "_" }).prefix(limit))
        }
        let pri = "<\(header.facility * 8 + header.severity)>"
        if header.rfc3164 {
            let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
            var seconds = time_t(seconds)
            var parts = tm()
            localtime_r(&seconds, &parts)
            func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
            let day = parts.tm_mday < 10 ? " \(parts.tm_mday)" : "\(parts.tm_mday)"
            let stamp = "\(months[Int(parts.tm_mon)]) \(day) \(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))"
            let tag = word(header.app, 32) + (header.procid.map { "[\(word($0, 16))]" } ?? "")
            return Array("\(pri)\(stamp) \(word(header.hostname, 255)) \(tag): \(text)".utf8)
        }
        var stamp = [UInt8]()
        SyslogRecord.appendTime(seconds: seconds, milliseconds: microseconds / 1000, into: &stamp)
        let time = String(decoding: stamp, as: UTF8.self)
        let head = "\(pri)1 \(time) \(word(header.hostname, 255)) \(word(header.app, 48)) \(word(header.procid, 128)) \(word(header.msgid, 32)) -"
        return Array(head.utf8) + (text.isEmpty ? [] : [0x20] + Array(text.utf8))
    }

    public enum Transport: Sendable {
        case udp
        case tcp(octetCounting: Bool)
    }

    let fd: CInt
    let transport: Transport
    let timeout: Double
    let target: String

    /// Connects (TCP) or addresses (UDP) `host:port`.
    public init(host: String, port: Int, transport: Transport, timeout: Double) throws {
        let address: SocketAddress
        do {
            address = try SocketAddress.makeAddressResolvingHost(host, port: port)
        } catch {
            throw SyslogClientError("cannot resolve \(host): \(error)")
        }
        target = address.logDescription
        let type: Int32
        if case .udp = transport { type = Int32(SOCK_DGRAM.rawValue) } else { type = Int32(SOCK_STREAM.rawValue) }
        fd = socket(address.protocol.rawValue, type | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SyslogClientError("cannot open a socket: \(String(cString: strerror(errno)))") }
        self.transport = transport
        self.timeout = timeout
        var wait = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        guard address.withSockAddr({ connect(fd, $0, socklen_t($1)) == 0 }) else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw SyslogClientError("cannot connect to \(target): \(reason)")
        }
    }

    /// Formats `text` with the time now and sends it.
    public func send(_ text: String, header: Header) throws {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        try send(Self.format(text, header: header, seconds: Int(now.tv_sec), microseconds: Int(now.tv_nsec / 1000)))
    }

    /// Sends one message.
    public func send(_ message: [UInt8]) throws {
        var bytes = message
        switch transport {
        case .udp: break
        case .tcp(let octetCounting):
            if octetCounting {
                bytes = Array("\(message.count) ".utf8) + message
            } else {
                bytes = message.map { $0 == 0x0A ? 0x20 : $0 } + [0x0A]  // LF framing: one line per message
            }
        }
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if sent < 0 {
                if errno == EINTR { continue }
                throw SyslogClientError("cannot send to \(target): \(String(cString: strerror(errno)))")
            }
            if case .udp = transport, sent != bytes.count { throw SyslogClientError("datagram to \(target) cut short") }
            offset += sent
        }
    }

    /// Ends the session. Over TCP: half-closes and waits until the server has read everything
    /// and closed too, so a message is known to have arrived when this returns.
    public func finish() throws {
        defer { close(fd) }
        guard case .tcp = transport else { return }
        shutdown(fd, Int32(SHUT_WR))
        var buffer = [UInt8](repeating: 0, count: 512)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { return }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { throw SyslogClientError("\(target) did not close within \(timeout) s") }
                throw SyslogClientError("reading from \(target): \(String(cString: strerror(errno)))")
            }
        }
    }
}
