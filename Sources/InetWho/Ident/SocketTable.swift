#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The kernel's table of TCP sockets as Linux shows it in /proc/net/tcp and /proc/net/tcp6,
/// which ident consults to tell whether a connection really exists.
public enum SocketTable {
    public struct Endpoint: Hashable, Sendable {
        /// 4 bytes for IPv4 (an IPv4-mapped IPv6 address is stored as its IPv4 address), 16 for IPv6.
        public var address: [UInt8]
        public var port: Int

        public init(address: [UInt8], port: Int) {
            self.address = Self.unmapped(address)
            self.port = port
        }

        static func unmapped(_ address: [UInt8]) -> [UInt8] {
            if address.count == 16, address[0..<10].allSatisfy({ $0 == 0 }), address[10] == 0xff, address[11] == 0xff {
                return Array(address[12..<16])
            }
            return address
        }
    }

    public struct Connection: Hashable, Sendable {
        public var local: Endpoint
        public var remote: Endpoint
        /// The TCP state as the kernel numbers it (1 established … 11 closing).
        public var state: Int
    }

    /// States of a connection that exists (not listening, not closed, not in TIME_WAIT).
    static let liveStates: Set<Int> = [1, 2, 3, 4, 5, 8, 9, 11]

    /// The connections in the text of /proc/net/tcp or /proc/net/tcp6; malformed lines (and
    /// the heading) are skipped.
    public static func parse(_ text: Substring) -> [Connection] {
        var connections: [Connection] = []
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 4, fields[0].hasSuffix(":"),
                  let local = endpoint(fields[1]), let remote = endpoint(fields[2]),
                  fields[3].count <= 2, fields[3].utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x46) }),
                  let state = Int(fields[3], radix: 16) else { continue }
            connections.append(Connection(local: local, remote: remote, state: state))
        }
        return connections
    }

    /// `0100007F:1F90`: the address as the kernel's 32-bit words printed in hex (each in the
    /// machine's byte order), then the port in hex.
    static func endpoint(_ field: Substring) -> Endpoint? {
        let parts = field.split(separator: ":", omittingEmptySubsequences: false)
        // Hex digits only: Int(_:radix:) would also take a sign ("-F90" is a port of -3984).
        guard parts.count == 2, parts[0].count == 8 || parts[0].count == 32, parts[1].count == 4,
              field.utf8.allSatisfy({ $0 == UInt8(ascii: ":") || ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x46) || ($0 >= 0x61 && $0 <= 0x66) }),
              let port = Int(parts[1], radix: 16) else { return nil }
        var bytes: [UInt8] = []
        var index = parts[0].startIndex
        while index < parts[0].endIndex {
            let next = parts[0].index(index, offsetBy: 8)
            guard let word = UInt32(parts[0][index..<next], radix: 16) else { return nil }
            withUnsafeBytes(of: word) { bytes += $0 }
            index = next
        }
        return Endpoint(address: bytes, port: port)
    }

    /// Whether `connections` hold a live one from `local` to `remote`.
    public static func contains(_ connections: [Connection], local: Endpoint, remote: Endpoint) -> Bool {
        connections.contains { $0.local == local && $0.remote == remote && liveStates.contains($0.state) }
    }

    /// Reads the machine's tables (at most `limit` bytes of each) and looks for the connection.
    public static func exists(local: Endpoint, remote: Endpoint, limit: Int) -> Bool {
        for path in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let text = read(path, limit: limit) else { continue }
            if contains(parse(Substring(text)), local: local, remote: remote) { return true }
        }
        return false
    }

    static func read(_ path: String, limit: Int) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while data.count < limit {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, min($0.count, limit - data.count)) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            data += chunk[0..<count]
        }
        // A table cut at the limit: drop the partial last line.
        if let lastLF = data.lastIndex(of: 0x0a) { data.removeSubrange((lastLF + 1)...) }
        return String(decoding: data, as: UTF8.self)
    }
}
