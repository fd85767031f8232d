import CInetSupport
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The host: binds every enabled service on each of its transports and addresses, keeps the
/// counters, applies a new plan on reload, and drains connections on shutdown.
/// It knows nothing about any protocol.
public final class InetHost: Sendable {
    public let group: any EventLoopGroup
    private let logger: Logger
    private let state: NIOLockedValueBox<State>
    /// The directory of the plan the host started with; the directories of later plans follow it.
    public let directory: HostDirectory

    private struct State {
        var plan: HostPlan
        /// Bind addresses in force (optional ones the machine lacks removed at start).
        var addresses: [BindAddress]
        var runtimes: [ServiceRuntime]
        /// Sockets bound before the host started (by the supervisor, systemd or this process
        /// before it dropped privileges) and not yet taken by a service.
        var inherited: [ListeningSocket]
    }

    /// - Parameters:
    ///   - region: the supervisor's shared region (in a worker): counters and the directory
    ///     of the whole host come from it.
    ///   - inherited: sockets already bound; a service listens on those named for it and
    ///     binds its own only when none were given.
    ///   - journal: write the event journal under `data_dir/events` (when the host is the whole
    ///     process: `isolation: none`, or a worker started without the supervisor).
    public init(plan: HostPlan, group: any EventLoopGroup, logger: Logger, region: SharedRegion? = nil, inherited: [ListeningSocket] = [], journal: Bool = false) {
        self.group = group
        self.logger = logger
        directory = plan.directory
        // Events go to the supervisor's ring, or (one process) to a ring of this process's own.
        var ring = region?.events
        var writer: EventJournal?
        if region == nil, plan.events.enabled {
            let folder = Self.joinPath(plan.dataDirectory, "events")
            ring = EventRing.inProcess(slots: plan.events.ringSize, slotBytes: plan.events.maxEventBytes)
            if journal, plan.events.journal, let ring {
                ring.seed(lastID: EventJournal.lastID(in: folder))
                writer = EventJournal(ring: ring, folder: folder, rotateBytes: plan.events.journalRotateBytes, maxBytes: plan.events.journalMaxBytes, logger: logger)
            }
        }
        self.journal = writer
        plan.directory.events.attach(ring: ring, settings: plan.events)
        let runtimes = plan.services.map { ServiceRuntime(planned: $0, directory: plan.directory, region: region) }
        self.state = NIOLockedValueBox(State(plan: plan, addresses: plan.bindAddresses, runtimes: runtimes, inherited: inherited))
        if let region {
            plan.directory.attach(region: region)
        } else {
            plan.directory.attach { () -> [ServiceStatus] in
                runtimes.map { (runtime: ServiceRuntime) -> ServiceStatus in runtime.status() }
            }
        }
    }

    /// The plan in force.
    public var plan: HostPlan { state.withLockedValue { $0.plan } }

    /// The event journal this process writes (none under the supervisor, which writes it).
    private let journal: EventJournal?

    static func joinPath(_ folder: String, _ name: String) -> String {
        folder.hasSuffix("/") ? folder + name : folder + "/" + name
    }

    /// Binds every enabled service. On the first failure, everything bound so far is closed
    /// and the error names the service, transport and address:port.
    public func start() async throws(BindError) {
        if plan.pinEventLoops { pinEventLoops() }
        let addresses = state.withLockedValue { $0.addresses }.filter { address in
            guard address.optional else { return true }
            let available = Self.addressIsAvailable(address.host)
            if !available { logger.notice("skipping bind address: not available on this machine", metadata: ["address": "\(address.host)"]) }
            return available
        }
        let runtimes = state.withLockedValue { state in
            state.addresses = addresses
            return state.runtimes
        }
        if let journal, let ring = directory.events.readableRing {
            do {
                try createDirectories(plan.dataDirectory)
                try journal.start(after: ring.lastID)
            } catch {
                logger.warning("the event journal is off", metadata: ["error": "\(error)"])
            }
            // The whole host is this process: it says when it starts and stops.
            let plan = self.plan
            directory.events.emit(service: "inetkit", kind: "host.start") { body in
                body.int("pid", Int(getpid()))
                body.string("isolation", "none")
                body.strings("services", plan.services.filter(\.enabled).map(\.descriptor.name))
            }
        }
        do {
            for runtime in runtimes where runtime.plan.enabled {
                try await bind(runtime, addresses: addresses)
            }
        } catch {
            for runtime in runtimes { await runtime.stopListening() }
            throw error
        }
    }

    /// Every bound listener, in plan order.
    public var listeners: [Listener] {
        state.withLockedValue { $0.runtimes }.flatMap { $0.listeners.withLockedValue { $0 } }
    }

    /// `{service: {transport: port}}` for the ports file.
    public var ports: [String: [Transport: Int]] {
        var result: [String: [Transport: Int]] = [:]
        for listener in listeners { result[listener.service, default: [:]][listener.transport] = listener.port }
        return result
    }

    /// The port a running service listens on.
    public func port(of service: String, transport: Transport) -> Int? {
        listeners.first { $0.service == service && $0.transport == transport }?.port
    }

    /// Counter snapshots of every service and transport (running or not).
    public func counters() -> [ServiceCounters.Snapshot] {
        state.withLockedValue { $0.runtimes }.flatMap { runtime in
            runtime.counters.keys.sorted().map { runtime.counters[$0]!.snapshot() }
        }
    }

    /// The live counters of one service and transport.
    public func counters(of service: String, transport: Transport) -> ServiceCounters? {
        state.withLockedValue { $0.runtimes }.first { $0.name == service }?.counters[transport]
    }

    /// TCP connections open now, all services.
    public var openConnections: Int {
        state.withLockedValue { $0.runtimes }.reduce(0) { $0 + $1.openConnections }
    }

    /// Applies a re-read configuration: enables and disables services and changes limits
    /// without dropping connections. Returns what it did (and what needs a restart).
    @discardableResult
    public func apply(_ newPlan: HostPlan) async -> [String] {
        var messages: [String] = []
        let (old, addresses, runtimes) = state.withLockedValue { ($0.plan, $0.addresses, $0.runtimes) }
        // The new services were made with the new plan's directory: it answers as the host's.
        newPlan.directory.follow(directory)
        directory.events.attach(ring: directory.events.readableRing, settings: newPlan.events)
        newPlan.directory.events.attach(ring: directory.events.readableRing, settings: newPlan.events)
        if newPlan.bindAddresses != old.bindAddresses { messages.append("bind addresses changed: takes effect after a restart") }
        if newPlan.portPlan != old.portPlan { messages.append("port offset changed: takes effect after a restart") }
        if newPlan.shutdownGrace != old.shutdownGrace { messages.append("shutdown_grace: \(old.shutdownGrace) s → \(newPlan.shutdownGrace) s") }
        if newPlan.dataDirectory != old.dataDirectory { messages.append("data_dir changed to \(newPlan.dataDirectory) (for the services' new files)") }
        for planned in newPlan.services {
            guard let runtime = runtimes.first(where: { $0.name == planned.descriptor.name }) else { continue }
            let previous = runtime.plan
            let listening = runtime.isListening
            var next = planned
            if listening && (planned.port != previous.port || planned.transports != previous.transports) {
                messages.append("\(runtime.name): port or transports changed: takes effect after a restart")
                next.port = previous.port
                next.transports = previous.transports
            }
            if planned.limits != previous.limits { messages.append("\(runtime.name): limits updated") }
            if planned.options != previous.options, planned.enabled, listening {
                messages.append("\(runtime.name): options changed (new connections and datagrams use them)")
            }
            runtime.replacePlan(next)
            if planned.enabled && !listening {
                do {
                    try await bind(runtime, addresses: addresses)
                    messages.append("\(runtime.name): enabled")
                } catch {
                    messages.append("\(runtime.name): could not be enabled: \(error)")
                }
            } else if !planned.enabled && listening {
                await runtime.stopListening()
                messages.append("\(runtime.name): disabled (open connections finish)")
            }
        }
        state.withLockedValue { state in
            var kept = newPlan
            kept.bindAddresses = old.bindAddresses
            kept.portPlan = old.portPlan
            state.plan = kept
        }
        return messages
    }

    /// Stops accepting, lets open connections finish for up to `grace` seconds, closes the
    /// rest, and logs the session summary.
    public func shutdown(grace: Double, summary: Bool = true, listenersClosed: @Sendable () -> Void = {}) async {
        let runtimes = state.withLockedValue { $0.runtimes }
        let loops = eventLoops
        for runtime in runtimes { await runtime.stopListening(childLoops: loops) }
        // (Each listener let its last accepted connections finish their setup before it
        // closed: they are counted below.)
        listenersClosed()
        for runtime in runtimes { runtime.settings.service.drainConnections() }
        let open = openConnections
        if open > 0 {
            logger.info("waiting for open connections to finish", metadata: ["connections": "\(open)", "grace_s": "\(grace)"])
        }
        let deadline = NIODeadline.now() + .seconds(clamping: grace)
        while openConnections > 0 && NIODeadline.now() < deadline {
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        let left = openConnections
        if left > 0 {
            logger.notice("grace period over: closing open connections", metadata: ["connections": "\(left)"])
            for runtime in runtimes { await runtime.closeConnections() }
        }
        for runtime in runtimes { await runtime.finishService() }
        if journal != nil { directory.events.emit(service: "inetkit", kind: "host.stop") { _ in } }
        journal?.stop()
        if summary { logSummary() }
    }

    /// One line per service and transport that saw traffic.
    public func logSummary() {
        Self.logSummary(counters(), logger: logger)
    }

    /// The session summary of these counters (the supervisor's, from the shared region).
    public static func logSummary(_ snapshots: [ServiceCounters.Snapshot], logger: Logger) {
        for snapshot in snapshots where snapshot.connections + snapshot.datagramsIn > 0 {
            var metadata: Logger.Metadata = [
                "service": "\(snapshot.service)", "transport": "\(snapshot.transport)",
                "peers": "\(snapshot.distinctPeers)", "bytes_in": "\(snapshot.bytesIn)", "bytes_out": "\(snapshot.bytesOut)",
                "errors": "\(snapshot.errors)",
            ]
            switch snapshot.transport {
            case .tcp:
                metadata["connections"] = "\(snapshot.connections)"
                metadata["refused"] = "\(snapshot.refusedConnections)"
            case .udp:
                metadata["datagrams_in"] = "\(snapshot.datagramsIn)"
                metadata["datagrams_out"] = "\(snapshot.datagramsOut)"
                metadata["dropped"] = "\(snapshot.datagramsDropped)"
            }
            logger.notice("session summary", metadata: metadata)
        }
    }

    // MARK: - Binding

    private func bind(_ runtime: ServiceRuntime, addresses: [BindAddress]) async throws(BindError) {
        let planned = runtime.plan
        var bound: [Listener] = []
        do {
            try runtime.settings.service.prepare()
        } catch {
            throw BindError(service: runtime.name, transport: planned.transports.first ?? .tcp, address: "-", reason: "cannot prepare the service: \(error)")
        }
        let given = state.withLockedValue { state -> [ListeningSocket] in
            let mine = state.inherited.filter { $0.service == runtime.name }
            state.inherited.removeAll { $0.service == runtime.name }
            return mine
        }
        if !given.isEmpty {
            try await adopt(runtime, sockets: given)
            return
        }
        // With port 0, the first transport picks a free port and the others take the same one
        // (DNS clients retry a truncated UDP answer over TCP on the same port), trying again
        // with a new port if the other transport's port is taken.
        var attempt = 0
        while true {
            attempt += 1
            do {
                var port = planned.port
                for transport in planned.transports {
                    let listeners = try await bind(runtime, transport: transport, port: port, addresses: addresses)
                    bound += listeners
                    if port == 0, let first = listeners.first { port = first.port }
                }
                break
            } catch {
                for listener in bound { try? await listener.closeAll() }
                bound = []
                if planned.port == 0, attempt < 10, error.reason.hasPrefix(BindError.addressInUse) { continue }
                throw error
            }
        }
        runtime.listeners.withLockedValue { $0 = bound }
        directory.listenersChanged()
    }

    /// Listens on sockets bound elsewhere: each TCP socket as it is, the UDP sockets of one
    /// address and port spread over the event loops (they were bound with SO_REUSEPORT, one
    /// per core). A transport of the plan without a socket is not served (systemd may pass
    /// only some).
    private func adopt(_ runtime: ServiceRuntime, sockets: [ListeningSocket]) async throws(BindError) {
        var bound: [Listener] = []
        var remaining = sockets
        do throws(BindError) {
            while let first = remaining.first {
                let same = remaining.filter { $0.transport == first.transport && $0.address.host == first.address.host && $0.port == first.port }
                remaining.removeAll { $0.transport == first.transport && $0.address.host == first.address.host && $0.port == first.port }
                guard runtime.counters[first.transport] != nil else {
                    for socket in same { socket.close() }
                    throw BindError(service: runtime.name, transport: first.transport, address: first.display, reason: "\(runtime.name) does not speak \(first.transport)")
                }
                let loops = eventLoops
                var channels: [any Channel] = []
                do {
                    for (index, socket) in same.enumerated() {
                        let loop = loops[index % loops.count]
                        channels.append(try await adoptChannel(runtime, socket: socket, on: loop))
                    }
                } catch {
                    for channel in channels { try? await channel.close() }
                    for socket in same.dropFirst(channels.count) { socket.close() }
                    throw BindError(service: runtime.name, transport: first.transport, address: first.display, reason: BindError.reason(for: error))
                }
                var listener = Listener(service: runtime.name, transport: first.transport, address: first.address, port: first.port, channel: channels[0])
                listener.siblings = Array(channels.dropFirst())
                bound.append(listener)
            }
        } catch {
            for listener in bound { try? await listener.closeAll() }
            for socket in remaining { socket.close() }
            throw error
        }
        let missing = runtime.plan.transports.filter { transport in !bound.contains { $0.transport == transport } }
        if !missing.isEmpty {
            logger.notice("no socket given for a transport: not served", metadata: [
                "service": "\(runtime.name)", "transports": "\(missing.map(\.rawValue).joined(separator: ","))",
            ])
        }
        runtime.listeners.withLockedValue { $0 = bound }
        directory.listenersChanged()
    }

    /// Binds one transport on every address, with one port for all of them: with port 0 the
    /// first address picks it and the others follow (retried if another program took it).
    private func bind(_ runtime: ServiceRuntime, transport: Transport, port: Int, addresses: [BindAddress]) async throws(BindError) -> [Listener] {
        var attempt = 0
        while true {
            attempt += 1
            var bound: [Listener] = []
            var chosen = port
            for address in addresses {
                do {
                    let channel = try await bindChannel(runtime, transport: transport, host: address.host, port: chosen)
                    let actual = channel.localAddress?.port ?? chosen
                    chosen = actual
                    var listener = Listener(service: runtime.name, transport: transport, address: address, port: actual, channel: channel)
                    if transport == .udp {
                        // One more socket per further event loop on the same port
                        // (SO_REUSEPORT): the kernel spreads datagrams over them by source,
                        // so every core answers.
                        do {
                            for loop in eventLoops.dropFirst() {
                                listener.siblings.append(try await bindChannel(runtime, transport: .udp, host: address.host, port: actual, on: loop))
                            }
                            if !runtime.plan.descriptor.udpKeepsSourceOrder { await Self.spreadByCPU(channel, sockets: 1 + listener.siblings.count) }
                        } catch {
                            try? await listener.closeAll()
                            throw error
                        }
                    }
                    bound.append(listener)
                } catch {
                    for listener in bound { try? await listener.closeAll() }
                    let inUse = (error as? IOError)?.errnoCode == EADDRINUSE || (error as? BindError)?.reason.hasPrefix(BindError.addressInUse) == true
                    if port == 0 && !bound.isEmpty && inUse && attempt < 10 { break }
                    throw BindError(service: runtime.name, transport: transport, address: address.display(port: chosen), reason: BindError.reason(for: error))
                }
            }
            if bound.count == addresses.count { return bound }
        }
    }

    /// Every event loop of the group (the UDP listeners get one socket on each).
    private var eventLoops: [any EventLoop] {
        var loops: [any EventLoop] = []
        for loop in group.makeIterator() { loops.append(loop) }
        return loops
    }

    static let datagramsPerRead = 16

    /// `pin_event_loops`: holds event loop i on the CPU whose datagrams socket i of each UDP
    /// group receives (the steering program sends a datagram received on CPU c to socket
    /// c % loops), so the reply is made on the CPU that took the datagram in and the loops share
    /// the work evenly (unpinned, the scheduler let one loop do up to 55% of it). Only when the
    /// CPUs this process may use and its loops match one to one; otherwise nothing is pinned.
    /// Off by default, as in nginx and NSD: a pinned loop cannot move off a CPU that something
    /// else keeps busy.
    private func pinEventLoops() {
        let loops = eventLoops
        guard let cpus = Self.pinnableCPUs(loops: loops.count) else { return }
        for cpu in cpus {
            let chosen = Int32(cpu)
            // (Best effort: a loop the kernel refuses to pin runs where it ran.)
            loops[cpu % loops.count].execute { _ = inetkit_pin_thread_to_cpu(chosen) }
        }
        logger.debug("event loops pinned", metadata: ["cpus": "\(cpus)"])
    }

    /// The CPU `pin_event_loops` holds `loop` on (nil when loops are not pinned): a direct UDP
    /// socket's thread is held there too, where the socket's datagrams arrive.
    private func pinnedCPU(of loop: any EventLoop) -> Int32? {
        guard plan.pinEventLoops else { return nil }
        let loops = eventLoops
        guard let cpus = Self.pinnableCPUs(loops: loops.count), let index = loops.firstIndex(where: { $0 === loop }),
              let cpu = cpus.first(where: { $0 % loops.count == index }) else { return nil }
        return Int32(cpu)
    }

    /// The CPUs to pin `loops` event loops on (loop `cpu % loops` on each): only when the CPUs
    /// this process may use and its loops match one to one.
    private static func pinnableCPUs(loops: Int) -> [Int]? {
        let cpus = allowedCPUs()
        guard loops > 1, cpus.count == loops, Set(cpus.map { $0 % loops }).count == loops else { return nil }
        return cpus
    }

    /// The CPUs the calling thread may run on, in order.
    public static func allowedCPUs() -> [Int] {
        var cpus = [Int32](repeating: 0, count: 1024)
        let count = inetkit_allowed_cpus(&cpus, Int32(cpus.count))
        guard count > 0 else { return [] }
        return cpus.prefix(Int(count)).map(Int.init)
    }

    /// Hands each datagram of the SO_REUSEPORT group `channel` belongs to to the socket of the
    /// CPU receiving it (best effort: without it the kernel hashes the source).
    private static func spreadByCPU(_ channel: any Channel, sockets: Int) async {
        guard sockets > 1, let provider = channel as? any SocketOptionProvider else { return }
        let program = inetkit_reuseport_cpu_program(UInt32(sockets))
        guard program.len > 0 else { return }
        try? await provider.unsafeSetSocketOption(level: .socket, name: NIOBSDSocket.Option(rawValue: inetkit_so_attach_reuseport_cbpf), value: program).get()
    }

    private func adoptChannel(_ runtime: ServiceRuntime, socket: ListeningSocket, on loop: any EventLoop) async throws -> any Channel {
        try await bindChannel(runtime, transport: socket.transport, host: socket.address.host, port: socket.port, on: loop, descriptor: socket.descriptor)
    }

    private func bindChannel(_ runtime: ServiceRuntime, transport: Transport, host: String, port: Int, on loop: (any EventLoop)? = nil, descriptor: Int32? = nil) async throws -> any Channel {
        let logger = self.logger
        switch transport {
        case .tcp:
            let bootstrap = ServerBootstrap(group: loop ?? group.next(), childGroup: group)
                .serverChannelOption(.backlog, value: 511)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                .childChannelOption(.maxMessagesPerRead, value: 16)
                .childChannelOption(.allowRemoteHalfClosure, value: true)
            if runtime.settings.service is any InetConnectionTaskService {
                return try await bindTaskListener(bootstrap, runtime: runtime, host: host, port: port, descriptor: descriptor)
            }
            let initialized = bootstrap
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if try runtime.admit(channel, logger: logger) {
                            try runtime.settings.service.configureTCPConnection(channel)
                        }
                    }
                }
            if let descriptor { return try await initialized.withBoundSocket(descriptor).get() }
            return try await initialized.bind(host: host, port: port).get()
        case .udp:
            let limits = runtime.settings.limits
            let counters = runtime.counters[.udp]!
            let settings = runtime.settings
            let name = runtime.name
            if settings.service.servesDatagramsDirectly {
                return try await bindDirectDatagrams(runtime, host: host, port: port, on: loop ?? group.next(), descriptor: descriptor)
            }
            let datagrams = DatagramBootstrap(group: loop ?? group.next())
                .channelOption(.socketOption(.so_reuseaddr), value: 1)
                .channelOption(ChannelOptions.Types.SocketOption(level: .socket, name: NIOBSDSocket.Option(rawValue: SO_REUSEPORT)), value: 1)
                // recvmmsg: up to 16 datagrams per system call, each in its own max_datagram slot
                // of one pooled buffer (reused once the handlers let go of their slices).
                .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: limits.maxDatagram * Self.datagramsPerRead))
                .channelOption(.datagramVectorReadMessageCount, value: Self.datagramsPerRead)
                .channelOption(.maxMessagesPerRead, value: 4)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(DatagramServiceHandler(
                            service: settings.service, name: name, counters: counters, limits: settings,
                            limiter: runtime.udpLimiter, logger: logger, events: runtime.directory.events))
                    }
                }
            // (An inherited socket has the buffer the supervisor gave it.)
            if let descriptor { return try await datagrams.withBoundSocket(descriptor).get() }
            let channel = try await datagrams.bind(host: host, port: port).get()
            if limits.udpReceiveBuffer > 0, let socket = channel as? any SocketOptionProvider {
                let size = CInt(clamping: limits.udpReceiveBuffer)
                do {
                    try await socket.unsafeSetSocketOption(level: .socket, name: NIOBSDSocket.Option(rawValue: SO_RCVBUFFORCE), value: size).get()
                } catch {
                    try? await socket.unsafeSetSocketOption(level: .socket, name: .so_rcvbuf, value: size).get()
                }
            }
            return channel
        }
    }

    /// A UDP socket served by a thread of its own (`servesDatagramsDirectly`): bound here (or
    /// inherited), given to a channel that never reads it (so the host lists, spreads and closes
    /// it like the others), and read and written by a `DirectDatagramSocket` on a descriptor of
    /// its own, stopped when the channel closes.
    private func bindDirectDatagrams(_ runtime: ServiceRuntime, host: String, port: Int, on loop: any EventLoop, descriptor: Int32?) async throws -> any Channel {
        let settings = runtime.settings
        let limits = settings.limits
        let socket: Int32
        if let descriptor {
            socket = descriptor
        } else {
            socket = try SocketBinder.bind(service: runtime.name, transport: .udp, address: BindAddress(host: host, optional: false), port: port,
                                           receiveBuffer: limits.udpReceiveBuffer).descriptor
        }
        let reader = fcntl(socket, F_DUPFD_CLOEXEC, SocketBinder.minimumDescriptor)
        guard reader >= 0 else {
            let code = errno
            close(socket)
            throw IOError(errnoCode: code, reason: "fcntl")
        }
        let channel: any Channel
        do {
            channel = try await DatagramBootstrap(group: loop)
                .channelOption(.autoRead, value: false)
                .withBoundSocket(socket).get()
        } catch {
            close(reader)
            throw error
        }
        let handler = DatagramServiceHandler(
            service: settings.service, name: runtime.name, counters: runtime.counters[.udp]!, limits: settings,
            limiter: runtime.udpLimiter, logger: logger, events: runtime.directory.events)
        handler.localPort = channel.localAddress?.port ?? port
        let direct: DirectDatagramSocket
        do {
            direct = try DirectDatagramSocket.start(descriptor: reader, handler: handler, maxDatagram: limits.maxDatagram, cpu: pinnedCPU(of: loop), name: runtime.name)
        } catch {
            try? await channel.close()
            throw error
        }
        channel.closeFuture.whenComplete { _ in direct.stop() }
        return channel
    }

    /// A listener whose connections each run as a task: the accept loop runs in a task of its
    /// own and ends when the listener is closed (the connections' tasks finish on their own).
    private func bindTaskListener(_ bootstrap: ServerBootstrap, runtime: ServiceRuntime, host: String, port: Int, descriptor: Int32?) async throws -> any Channel {
        let logger = self.logger
        let initializer: @Sendable (any Channel) -> EventLoopFuture<ConnectionTask> = { channel in
            Self.setupTaskConnection(channel, runtime: runtime, logger: logger)
        }
        let server: NIOAsyncChannel<ConnectionTask, Never>
        if let descriptor {
            server = try await bootstrap.bind(descriptor, childChannelInitializer: initializer)
        } else {
            server = try await bootstrap.bind(host: host, port: port, childChannelInitializer: initializer)
        }
        Task {
            try? await server.executeThenClose { connections in
                await withDiscardingTaskGroup { group in
                    do {
                        for try await connection in connections {
                            group.addTask { await connection.run() }
                        }
                    } catch {
                        logger.debug("accept loop ended", metadata: ["service": "\(runtime.name)", "error": "\(error)"])
                    }
                }
            }
        }
        return server.channel
    }

    private static func setupTaskConnection(_ channel: any Channel, runtime: ServiceRuntime, logger: Logger) -> EventLoopFuture<ConnectionTask> {
        do {
            guard try runtime.admit(channel, logger: logger),
                  let service = runtime.settings.service as? any InetConnectionTaskService else {
                return channel.eventLoop.makeSucceededFuture(ConnectionTask.none)
            }
            return service.setupConnection(channel, logger: logger)
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
    }

    /// Whether `host` can be bound here (e.g. ::1 on a machine without IPv6).
    public static func addressIsAvailable(_ host: String) -> Bool {
        guard let address = try? SocketAddress(ipAddress: host, port: 0) else { return false }
        let family: Int32 = address.protocol == .inet6 ? AF_INET6 : AF_INET
        let fd = socket(family, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return address.withSockAddr { pointer, length in
            Glibc.bind(fd, pointer, socklen_t(length)) == 0
        }
    }
}

// It points at instructions that are written once and never freed: safe to hand to the loop.
extension inetkit_fprog: @retroactive @unchecked Sendable {}
