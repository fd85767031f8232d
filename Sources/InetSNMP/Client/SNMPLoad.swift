#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

/// A load generator for GETs: one thread, one socket, `inFlight` requests outstanding (the way
/// dnsperf drives a name server), so that the agent, not the client, is what gets measured.
public enum SNMPLoad {
    public struct Result: Sendable {
        public var answered: Int
        public var lost: Int
        public var seconds: Double
    }

    /// Sends `count` GET requests for `oids` and counts the answers; a request unanswered within
    /// `timeout` is counted lost and replaced.
    public static func gets(host: String, port: Int, community: String, version: SNMPMessage.Version, oids: [OID],
                            count: Int, inFlight: Int, timeout: Double) throws -> Result {
        let address = try SocketAddress.makeAddressResolvingHost(host, port: port)
        let fd = socket(address.protocol.rawValue, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw SNMPClientError("cannot open a UDP socket") }
        defer { close(fd) }
        let connected = address.withSockAddr { connect(fd, $0, socklen_t($1)) == 0 }
        guard connected else { throw SNMPClientError("cannot reach \(host):\(port)") }
        var wait = timeval(tv_sec: 0, tv_usec: 50_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        var buffer = 1 << 20
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, socklen_t(MemoryLayout<Int>.size))

        let binds = oids.map { VarBind($0, .null) }
        var outstanding: [Int32: Double] = [:]
        var nextID: Int32 = 1
        var sent = 0
        var answered = 0
        var lost = 0
        func now() -> Double {
            var time = timespec()
            clock_gettime(CLOCK_MONOTONIC, &time)
            return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
        }
        func send() {
            let id = nextID
            nextID = nextID == Int32.max ? 1 : nextID + 1
            let bytes = SNMPMessage(version: version, community: Array(community.utf8),
                                    pdu: PDU(type: .getRequest, requestID: id, varbinds: binds)).encode()
            if bytes.withUnsafeBytes({ Glibc.send(fd, $0.baseAddress, $0.count, 0) }) == bytes.count {
                outstanding[id] = now()
            } else {
                lost += 1
            }
            sent += 1
        }
        let started = now()
        while sent < min(inFlight, count) { send() }
        var receive = [UInt8](repeating: 0, count: 65_536)
        while answered + lost < count {
            let length = receive.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if length > 0, let message = try? SNMPMessage.decode(Array(receive[0..<length])),
               outstanding.removeValue(forKey: message.pdu.requestID) != nil {
                answered += 1
                if sent < count { send() }
                continue
            }
            // Nothing (or something else) came: retire requests older than the timeout.
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
