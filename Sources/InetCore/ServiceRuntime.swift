import Logging
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// What can change on SIGHUP without dropping connections: the limits and the service object
/// (its options). Handlers check the generation, a single atomic load, before re-reading.
public final class LimitsBox: Sendable {
    private let state: NIOLockedValueBox<(Limits, any InetService, Int)>
    private let generationValue = Atomic<Int>(0)

    init(limits: Limits, service: any InetService) {
        state = NIOLockedValueBox((limits, service, 0))
    }

    var generation: Int { generationValue.load(ordering: .acquiring) }

    var current: (Limits, Int) {
        state.withLockedValue { ($0.0, $0.2) }
    }

    /// Limits, service and generation read together: one generation's, never a mix.
    var snapshot: (limits: Limits, service: any InetService, generation: Int) {
        state.withLockedValue { ($0.0, $0.1, $0.2) }
    }

    var service: any InetService {
        state.withLockedValue { $0.1 }
    }

    var limits: Limits {
        state.withLockedValue { $0.0 }
    }

    func update(limits: Limits, service: any InetService) {
        let next = state.withLockedValue { value -> Int in
            value = (limits, service, value.2 + 1)
            return value.2
        }
        generationValue.store(next, ordering: .releasing)
    }
}

/// A bound socket of one service.
public struct Listener: Sendable {
    public var service: String
    public var transport: Transport
    public var address: BindAddress
    public var port: Int
    let channel: any Channel
    /// Further sockets on the same address and port (UDP, one per event loop).
    var siblings: [any Channel] = []

    init(service: String, transport: Transport, address: BindAddress, port: Int, channel: any Channel) {
        self.service = service
        self.transport = transport
        self.address = address
        self.port = port
        self.channel = channel
    }

    /// Stops accepting first (no more reads on the listening socket), lets the connections
    /// accepted in the last batch finish their setup on their event loops, then closes: NIO
    /// drops an accepted connection whose listener closes during its setup, and under the
    /// supervisor the socket lives on in the next worker, so such a connection would be reset
    /// where its neighbours in the backlog are served.
    func closeAll(childLoops: [any EventLoop] = []) async throws {
        let all = [channel] + siblings
        if transport == .tcp {
            for channel in all { try? await channel.setOption(.autoRead, value: false).get() }
            for _ in 0..<3 {
                for loop in childLoops { try? await loop.submit {}.get() }
                for channel in all { try? await channel.eventLoop.submit {}.get() }
            }
        }
        for channel in all { try? await channel.close() }
    }

    /// `address:port` as printed in the table.
    public var display: String { address.display(port: port) }
}

/// One service while the host runs it: its counters, its listeners and open connections.
final class ServiceRuntime: Sendable {
    let name: String
    let settings: LimitsBox
    let counters: [Transport: ServiceCounters]
    let listeners = NIOLockedValueBox<[Listener]>([])
    private let connections = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])
    private let planned = NIOLockedValueBox<PlannedService?>(nil)
    let directory: HostDirectory
    /// The per-source UDP rate limiter, shared by all the service's UDP sockets.
    let udpLimiter: NIOLockedValueBox<SourceRateLimiter>

    init(planned service: PlannedService, directory: HostDirectory, region: SharedRegion? = nil) {
        self.directory = directory
        udpLimiter = NIOLockedValueBox(SourceRateLimiter(rate: service.limits.udpRate, burst: service.limits.udpBurst, maximumSources: service.limits.udpMaxSources))
        name = service.descriptor.name
        settings = LimitsBox(limits: service.limits, service: service.service)
        // Under the supervisor the counters live in the shared region, so every worker's pages
        // show the whole host; otherwise in this process.
        counters = Dictionary(uniqueKeysWithValues: service.descriptor.transports.map {
            ($0, region?.counters(service: service.descriptor.name, transport: $0)
                ?? ServiceCounters(service: service.descriptor.name, transport: $0))
        })
        planned.withLockedValue { $0 = service }
    }

    var plan: PlannedService { planned.withLockedValue { $0! } }

    func replacePlan(_ service: PlannedService) {
        planned.withLockedValue { $0 = service }
        settings.update(limits: service.limits, service: service.service)
    }

    var isListening: Bool { listeners.withLockedValue { !$0.isEmpty } }

    var openConnections: Int { connections.withLockedValue { $0.count } }

    /// Admits one accepted TCP connection (on its event loop): counts it, applies the
    /// connection limit, and installs the accounting and idle-timeout handlers. Returns false
    /// when the connection was refused (it closes by itself).
    func admit(_ channel: any Channel, logger: Logger) throws -> Bool {
        let counters = self.counters[.tcp]!
        let (limits, _) = settings.current
        counters.connections.bump(1)
        let peer = channel.remoteAddress
        counters.notePeer(peer?.ipAddress ?? "?")
        let active = counters.activeConnections.wrappingAdd(1, ordering: .relaxed).newValue
        let sync = channel.pipeline.syncOperations
        guard active <= limits.maxConnections else {
            counters.activeConnections.bump(-1)
            counters.refusedConnections.bump(1)
            logger.warning("connection", metadata: [
                "service": "\(name)", "transport": "tcp", "peer": "\(peer?.logDescription ?? "?")",
                "duration_ms": "0.0", "bytes_in": "0", "bytes_out": "0",
                "outcome": "refused: max_connections \(limits.maxConnections) reached",
            ])
            directory.events.emit(service: name, kind: "connection.refused") { body in
                body.string("transport", "tcp")
                body.string("peer", peer?.logDescription ?? "?")
                body.string("outcome", "refused: max_connections \(limits.maxConnections) reached")
            }
            try sync.addHandler(RefuseConnectionHandler())
            return false
        }
        // A connection counts as open (for the drain at shutdown and the status page) once it
        // is active: an accepted channel whose listener closes before it is registered is
        // dropped by NIO, like one still in the kernel's backlog.
        let id = ObjectIdentifier(channel)
        let connections = self.connections
        let onActive: @Sendable () -> Void = {
            connections.withLockedValue { $0[id] = channel }
            channel.closeFuture.whenComplete { _ in
                connections.withLockedValue { _ = $0.removeValue(forKey: id) }
            }
        }
        let idle = TimeAmount.seconds(clamping: limits.idleTimeout)
        // Output never outruns the peer: past `max_pending_output` unsent bytes the channel
        // turns unwritable, the services stop answering, and BackPressureHandler stops
        // reading until the peer has taken half of it.
        let high = limits.maxPendingOutput
        try channel.syncOptions?.setOption(.writeBufferWaterMark, value: .init(low: high / 2, high: high))
        try sync.addHandler(IdleStateHandler(allTimeout: idle))
        let peerText = peer?.logDescription ?? "?"
        let events = directory.events.connectionOpened(service: name, peer: peerText, port: channel.localAddress?.port ?? 0)
        if let events {
            ConnectionEvents.register(events, for: channel)
            channel.closeFuture.whenComplete { _ in
                events.released()
                ConnectionEvents.unregister(channel)
            }
        }
        try sync.addHandler(ConnectionAccountingHandler(counters: counters, logger: logger, peer: peerText, events: events, onActive: onActive))
        try sync.addHandler(BackPressureHandler())
        return true
    }

    /// The status page's view of this service.
    func status() -> ServiceStatus {
        let listening = listeners.withLockedValue { $0 }
        return ServiceStatus(
            name: name, enabled: !listening.isEmpty,
            listeners: listening.map { ListenerStatus(transport: $0.transport, address: $0.display, port: $0.port) },
            counters: counters.keys.sorted().map { counters[$0]!.snapshot() })
    }

    /// Closes every listener; open connections go on.
    func stopListening(childLoops: [any EventLoop] = []) async {
        let current = listeners.withLockedValue { list -> [Listener] in
            defer { list.removeAll() }
            return list
        }
        for listener in current {
            try? await listener.closeAll(childLoops: childLoops)
        }
        if !current.isEmpty { directory.listenersChanged() }
    }

    /// Closes every open connection now, and waits until each has gone through its handlers'
    /// close (a syslog connection stores its last message then).
    func closeConnections() async {
        let open = connections.withLockedValue { Array($0.values) }
        for channel in open {
            try? await channel.close()
        }
        for channel in open {
            try? await channel.closeFuture.get()
        }
    }

    /// The service's last word at shutdown (e.g. syslog syncs its files).
    func finishService() async {
        await settings.service.finish()
    }
}
