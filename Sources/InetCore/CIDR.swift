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
        // Read from the sockaddr itself (no text on the way: SNMP asks this per request), as
        // `SourceKey` does: sockaddr_in keeps the IPv4 address at offset 4, sockaddr_in6 the
        // IPv6 address at offset 8.
        address.withSockAddr { pointer, length in
            let raw = UnsafeRawBufferPointer(start: UnsafeRawPointer(pointer), count: length)
            switch address.protocol {
            case .inet where length >= 8:
                return matches(UnsafeRawBufferPointer(rebasing: raw[4..<8]))
            case .inet6 where length >= 24:
                let v6 = UnsafeRawBufferPointer(rebasing: raw[8..<24])
                // ::ffff:a.b.c.d matches IPv4 blocks.
                if bytes.count == 4, v6.prefix(12).elementsEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]) {
                    return matches(UnsafeRawBufferPointer(rebasing: v6[12...]))
                }
                return matches(v6)
            default:
                return false
            }
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
