import CInetSupport
import NIOConcurrencyHelpers
import Synchronization

/// One 64-bit counter, in this process's memory or in the region the supervisor shares with
/// every worker. Updated lock-free.
public struct CounterCell: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Int64>

    @inline(__always)
    public func load(ordering: AtomicLoadOrdering = .relaxed) -> Int {
        Int(inetkit_atomic_load(pointer))
    }

    @inline(__always)
    public func store(_ value: Int) {
        inetkit_atomic_store(pointer, Int64(value))
    }

    @inline(__always)
    @discardableResult
    public func wrappingAdd(_ amount: Int, ordering: AtomicUpdateOrdering = .relaxed) -> (oldValue: Int, newValue: Int) {
        let old = inetkit_atomic_add(pointer, Int64(amount))
        return (Int(old), Int(old &+ Int64(amount)))
    }

    @inline(__always)
    func bump(_ amount: Int) {
        _ = inetkit_atomic_add(pointer, Int64(amount))
    }
}

/// The counters of one service on one transport, kept once for the host and read by the
/// status page, the metrics endpoint and the SNMP agent alike. Under the supervisor they live
/// in shared memory, so every worker's page shows the whole host.
public final class ServiceCounters: @unchecked Sendable {
    public let service: String
    public let transport: Transport

    /// The cells, in this order (the layout of a shared region's entry).
    enum Slot: Int, CaseIterable {
        case connections, activeConnections, refusedConnections, datagramsIn, datagramsOut, datagramsDropped
        case bytesIn, bytesOut, errors, distinctPeers, restarts
    }
    static let slotCount = 12

    private let base: UnsafeMutablePointer<Int64>
    /// Whether `base` was allocated here (and is freed with the counters).
    private let owned: Bool
    /// Shared distinct-peer set, when the counters live in a region.
    private let peerSet: SharedPeerSet?
    private let entryIndex: Int

    /// TCP connections accepted (including those refused at the limit).
    public var connections: CounterCell { cell(.connections) }
    /// TCP connections open now.
    public var activeConnections: CounterCell { cell(.activeConnections) }
    /// TCP connections closed at once because `max_connections` was reached.
    public var refusedConnections: CounterCell { cell(.refusedConnections) }
    /// UDP datagrams received.
    public var datagramsIn: CounterCell { cell(.datagramsIn) }
    /// UDP datagrams sent.
    public var datagramsOut: CounterCell { cell(.datagramsOut) }
    /// UDP datagrams dropped (rate limit, full send buffer).
    public var datagramsDropped: CounterCell { cell(.datagramsDropped) }
    public var bytesIn: CounterCell { cell(.bytesIn) }
    public var bytesOut: CounterCell { cell(.bytesOut) }
    /// Connections or exchanges that ended in an error (including idle timeouts).
    public var errors: CounterCell { cell(.errors) }
    /// Times the supervisor restarted the worker that serves this service.
    public var restarts: CounterCell { cell(.restarts) }

    @inline(__always)
    private func cell(_ slot: Slot) -> CounterCell { CounterCell(pointer: base + slot.rawValue) }

    /// Distinct peer addresses seen, for the session summary (process-local set); bounded.
    private let peers = NIOLockedValueBox(Set<String>())
    public static let maximumTrackedPeers = 10_000

    /// Counters in this process's own memory.
    public init(service: String, transport: Transport) {
        self.service = service
        self.transport = transport
        base = UnsafeMutablePointer<Int64>.allocate(capacity: Self.slotCount)
        base.initialize(repeating: 0, count: Self.slotCount)
        owned = true
        peerSet = nil
        entryIndex = 0
    }

    /// Counters at `cells` in a shared region.
    init(service: String, transport: Transport, cells: UnsafeMutablePointer<Int64>, peers: SharedPeerSet, entry: Int) {
        self.service = service
        self.transport = transport
        base = cells
        owned = false
        peerSet = peers
        entryIndex = entry
    }

    deinit {
        if owned { base.deallocate() }
    }

    /// Records a peer address (without port) for the session summary.
    public func notePeer(_ host: String) {
        if let peerSet {
            if peerSet.insert(host, entry: entryIndex) { cell(.distinctPeers).bump(1) }
            return
        }
        peers.withLockedValue { set in
            if set.count < Self.maximumTrackedPeers, set.insert(host).inserted { cell(.distinctPeers).bump(1) }
        }
    }

    /// Distinct peers seen (at most `maximumTrackedPeers`).
    public var distinctPeers: Int { cell(.distinctPeers).load() }

    /// A consistent-enough copy for reports.
    public func snapshot() -> Snapshot {
        Snapshot(
            service: service, transport: transport,
            connections: connections.load(),
            activeConnections: activeConnections.load(),
            refusedConnections: refusedConnections.load(),
            datagramsIn: datagramsIn.load(),
            datagramsOut: datagramsOut.load(),
            datagramsDropped: datagramsDropped.load(),
            bytesIn: bytesIn.load(),
            bytesOut: bytesOut.load(),
            errors: errors.load(),
            distinctPeers: distinctPeers,
            restarts: restarts.load())
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
        /// Restarts of the worker serving the service (0 in a single process).
        public var restarts: Int

        public init(
            service: String, transport: Transport, connections: Int = 0, activeConnections: Int = 0,
            refusedConnections: Int = 0, datagramsIn: Int = 0, datagramsOut: Int = 0, datagramsDropped: Int = 0,
            bytesIn: Int = 0, bytesOut: Int = 0, errors: Int = 0, distinctPeers: Int = 0, restarts: Int = 0
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
            self.restarts = restarts
        }
    }
}

extension Synchronization.Atomic where Value == Int {
    @inline(__always)
    func bump(_ amount: Int) {
        _ = wrappingAdd(amount, ordering: .relaxed)
    }
}
