#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

/// A load generator: one thread, one socket, `inFlight` client requests outstanding (as dnsperf
/// drives a name server), each matched to its reply by the origin timestamp the server echoes.
/// The same client measures InetKit and chronyd in the benchmark.
public enum NTPLoad {
    public struct Result: Sendable {
        public var answered: Int
        public var lost: Int
        public var seconds: Double
    }

    public static func run(host: String, port: Int, count: Int, inFlight: Int, timeout: Double) throws -> Result {
        let address = try SocketAddress.makeAddressResolvingHost(host, port: port)
        let fd = socket(address.protocol.rawValue, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw NTPClientError("cannot open a UDP socket") }
        defer { close(fd) }
        guard address.withSockAddr({ connect(fd, $0, socklen_t($1)) == 0 }) else { throw NTPClientError("cannot reach \(host):\(port)") }
        var wait = timeval(tv_sec: 0, tv_usec: 50_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        var size = 1 << 20
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int>.size))

        func now() -> Double {
            var time = timespec()
            clock_gettime(CLOCK_MONOTONIC, &time)
            return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
        }
        var outstanding: [UInt64: Double] = [:]
        var serial: UInt64 = UInt64.random(in: 1...(1 << 40))
        var sent = 0, answered = 0, lost = 0
        func send() {
            serial &+= 1
            let bytes = NTPPacket(version: 4, mode: .client, transmitTime: NTPTimestamp(raw: serial)).encode()
            if bytes.withUnsafeBytes({ Glibc.send(fd, $0.baseAddress, $0.count, 0) }) == bytes.count {
                outstanding[serial] = now()
            } else {
                lost += 1
            }
            sent += 1
        }
        let started = now()
        while sent < min(inFlight, count) { send() }
        var receive = [UInt8](repeating: 0, count: 2048)
        while answered + lost < count {
            let length = receive.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if length >= NTPPacket.headerSize, let reply = NTPPacket.decode(receive[0..<length]),
               outstanding.removeValue(forKey: reply.originTime.raw) != nil {
                answered += 1
                if sent < count { send() }
                continue
            }
            let limit = now() - timeout
            for (id, time) in outstanding where time < limit {
                outstanding.removeValue(forKey: id)
                lost += 1
                if sent < count { send() }
            }
        }
        return Result(answered: answered, lost: lost, seconds: now() - started)
    }
}
