#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

/// An address block (`192.0.2.0/24`, `::1/128`, or one address), for lists of allowed clients
/// such as DNS `allow_transfer` and SNMP community `from`.
public struct CIDR: Sendable, Equatable {
    public var bytes: [UInt8]
    public var prefix: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1)
        let host = String(parts[0])
        guard let bytes = CIDR.address(host, family: AF_INET, count: 4) ?? CIDR.address(host, family: AF_INET6, count: 16) else { return nil }
        self.bytes = host.contains(":") ? bytes : Array(bytes.prefix(4))
        if parts.count == 2 {
            guard let prefix = Int(parts[1]), (0...(self.bytes.count * 8)).contains(prefix) else { return nil }
            self.prefix = prefix
        } else {
            self.prefix = self.bytes.count * 8
        }
    }

    public func contains(_ address: SocketAddress) -> Bool {
        // Read from the socket address itself (no text on the way: SNMP asks this per request).
        switch address {
        case .v4(let v4):
            // struct sockaddr_in: family (2 bytes), port (2), address (4).
            return withUnsafeBytes(of: v4.address) { matches(UnsafeRawBufferPointer(rebasing: $0[4..<8])) }
        case .v6(let v6):
            // struct sockaddr_in6: family (2), port (2), flow information (4), address (16).
            return withUnsafeBytes(of: v6.address) { whole in
                let raw = UnsafeRawBufferPointer(rebasing: whole[8..<24])
                // ::ffff:a.b.c.d matches IPv4 blocks.
                if bytes.count == 4, raw.prefix(12).elementsEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]) {
                    return matches(UnsafeRawBufferPointer(rebasing: raw[12...]))
                }
                return matches(raw)
            }
        default:
            return false
        }
    }

    private func matches(_ candidate: UnsafeRawBufferPointer) -> Bool {
        guard candidate.count == bytes.count else { return false }
        var remaining = prefix
        for (a, b) in zip(candidate, bytes) where remaining > 0 {
            let bits = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
            if a & mask != b & mask { return false }
            remaining -= bits
        }
        return true
    }

    static func address(_ text: String, family: Int32, count: Int) -> [UInt8]? {
        var storage = [UInt8](repeating: 0, count: 16)
        let ok = storage.withUnsafeMutableBytes { inet_pton(family, text, $0.baseAddress) == 1 }
        return ok ? Array(storage.prefix(count)) : nil
    }
}
