import NIOConcurrencyHelpers
import Synchronization

/// The counters of one service on one transport, kept once in the host and read by the
/// status page, the metrics endpoint and the SNMP agent alike. Updated lock-free.
public final class ServiceCounters: Sendable {
    public let service: String
    public let transport: Transport

    /// TCP connections accepted (including those refused at the limit).
    public let connections = Synchronization.Atomic<Int>(0)
    /// TCP connections open now.
    public let activeConnections = Synchronization.Atomic<Int>(0)
    /// TCP connections closed at once because `max_connections` was reached.
    public let refusedConnections = Synchronization.Atomic<Int>(0)
    /// UDP datagrams received.
    public let datagramsIn = Synchronization.Atomic<Int>(0)
    /// UDP datagrams sent.
    public let datagramsOut = Synchronization.Atomic<Int>(0)
    /// UDP datagrams dropped (rate limit, full send buffer).
    public let datagramsDropped = Synchronization.Atomic<Int>(0)
    public let bytesIn = Synchronization.Atomic<Int>(0)
    public let bytesOut = Synchronization.Atomic<Int>(0)
    /// Connections or exchanges that ended in an error (including idle timeouts).
    public let errors = Synchronization.Atomic<Int>(0)

    /// Distinct peer addresses seen, for the session summary; bounded.
    private let peers = NIOLockedValueBox(Set<String>())
    public static let maximumTrackedPeers = 10_000

    public init(service: String, transport: Transport) {
        self.service = service
        self.transport = transport
    }

    /// Records a peer address (without port) for the session summary.
    public func notePeer(_ host: String) {
        peers.withLockedValue { set in
            if set.count < Self.maximumTrackedPeers { set.insert(host) }
        }
    }

    /// Distinct peers seen (at most `maximumTrackedPeers`).
    public var distinctPeers: Int { peers.withLockedValue { $0.count } }

    /// A consistent-enough copy for reports.
    public func snapshot() -> Snapshot {
        Snapshot(
            service: service, transport: transport,
            connections: connections.load(ordering: .relaxed),
            activeConnections: activeConnections.load(ordering: .relaxed),
            refusedConnections: refusedConnections.load(ordering: .relaxed),
            datagramsIn: datagramsIn.load(ordering: .relaxed),
            datagramsOut: datagramsOut.load(ordering: .relaxed),
            datagramsDropped: datagramsDropped.load(ordering: .relaxed),
            bytesIn: bytesIn.load(ordering: .relaxed),
            bytesOut: bytesOut.load(ordering: .relaxed),
            errors: errors.load(ordering: .relaxed),
            distinctPeers: distinctPeers)
    }

    /// Plain values of the counters at one moment.
    public struct Snapshot: Sendable, Equatable {
        public var service: String
        public var transport: Transport
        public var connections: Int
        public var activeConnections: Int
        public var refusedConnections: Int
        public var datagramsIn: Int
        public var datagramsOut: Int
        public var datagramsDropped: Int
        public var bytesIn: Int
        public var bytesOut: Int
        public var errors: Int
        public var distinctPeers: Int

        public init(
            service: String, transport: Transport, connections: Int = 0, activeConnections: Int = 0,
            refusedConnections: Int = 0, datagramsIn: Int = 0, datagramsOut: Int = 0, datagramsDropped: Int = 0,
            bytesIn: Int = 0, bytesOut: Int = 0, errors: Int = 0, distinctPeers: Int = 0
        ) {
            self.service = service
            self.transport = transport
            self.connections = connections
            self.activeConnections = activeConnections
            self.refusedConnections = refusedConnections
            self.datagramsIn = datagramsIn
            self.datagramsOut = datagramsOut
            self.datagramsDropped = datagramsDropped
            self.bytesIn = bytesIn
            self.bytesOut = bytesOut
            self.errors = errors
            self.distinctPeers = distinctPeers
        }
    }
}

extension Synchronization.Atomic where Value == Int {
    @inline(__always)
    func bump(_ amount: Int) {
        _ = wrappingAdd(amount, ordering: .relaxed)
    }
}
