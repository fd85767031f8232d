#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The one port rule: well-known ports when the process may bind them, else everything moves
/// by 10000; an explicit offset always applies; a service's own `port` wins over both.
public struct PortPlan: Sendable, Equatable {
    /// The offset used when none is given and well-known ports cannot be bound.
    public static let unprivilegedOffset = 10_000

    /// The offset in force.
    public var offset: Int

    public init(offset: Int) {
        self.offset = offset
    }

    public init(explicitOffset: Int?, canBindPrivilegedPorts: Bool) {
        if let explicitOffset {
            offset = explicitOffset
        } else {
            offset = canBindPrivilegedPorts ? 0 : Self.unprivilegedOffset
        }
    }

    /// The port a service binds: its configured port if any, else well-known + offset.
    public func port(wellKnown: Int, configured: Int? = nil) -> Int {
        configured ?? (wellKnown + offset)
    }

    /// The port a client assumes for a server of this host's plan: the same rule the server
    /// applies (an explicit offset, else 0 when this process could bind the well-known port,
    /// else 10000).
    public static func defaultPort(wellKnown: Int, explicitOffset: Int?) -> Int {
        PortPlan(explicitOffset: explicitOffset, canBindPrivilegedPorts: processCanBindPrivilegedPorts(lowestPort: wellKnown))
            .port(wellKnown: wellKnown)
    }

    /// Whether this process may bind ports below 1024: root, CAP_NET_BIND_SERVICE, or a
    /// lowered `net.ipv4.ip_unprivileged_port_start`.
    public static func processCanBindPrivilegedPorts(lowestPort: Int = 1) -> Bool {
        #if os(Linux)
        if geteuid() == 0 { return true }
        if let status = readTextFile("/proc/self/status") {
            for line in status.split(separator: "\n") where line.hasPrefix("CapEff:") {
                let hex = line.dropFirst("CapEff:".count).trimmingPrefix(while: { $0 == " " || $0 == "\t" })
                if let caps = UInt64(hex, radix: 16), caps & (1 << 10) != 0 { return true }
            }
        }
        if let text = readTextFile("/proc/sys/net/ipv4/ip_unprivileged_port_start"),
           let start = Int(text.filter { !$0.isWhitespace }), start <= lowestPort {
            return true
        }
        return false
        #else
        return geteuid() == 0
        #endif
    }
}

extension Substring {
    fileprivate func trimmingPrefix(while predicate: (Character) -> Bool) -> Substring {
        var slice = self
        while let first = slice.first, predicate(first) { slice = slice.dropFirst() }
        return slice
    }
}
