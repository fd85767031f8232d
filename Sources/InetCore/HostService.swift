import Logging
import ServiceLifecycle
import UnixSignals

/// Runs an `InetHost` as a swift-service-lifecycle `Service`: binds, reports readiness,
/// re-reads the configuration on SIGHUP, and on graceful shutdown (SIGTERM/SIGINT through the
/// `ServiceGroup`) drains connections within the grace period.
public struct HostService: Service {
    public let host: InetHost
    private let logger: Logger
    private let reloadPlan: @Sendable () throws -> HostPlan
    private let onReady: @Sendable (InetHost) async throws -> Void
    private let onReload: @Sendable (InetHost, [String]) async -> Void
    private let supervised: Bool
    private let beforeStart: @Sendable () async -> Void

    /// - Parameters:
    ///   - reloadPlan: re-reads the configuration (on SIGHUP); an error keeps the old one.
    ///   - onReady: called once every listener is bound (print the table, write the ports file).
    ///   - onReload: called after a reload was applied, with what changed.
    public init(
        host: InetHost,
        logger: Logger,
        reloadPlan: @escaping @Sendable () throws -> HostPlan,
        onReady: @escaping @Sendable (InetHost) async throws -> Void,
        onReload: @escaping @Sendable (InetHost, [String]) async -> Void = { _, _ in },
        supervised: Bool = false,
        beforeStart: @escaping @Sendable () async -> Void = {}
    ) {
        self.supervised = supervised
        self.beforeStart = beforeStart
        self.host = host
        self.logger = logger
        self.reloadPlan = reloadPlan
        self.onReady = onReady
        self.onReload = onReload
    }

    public func run() async throws {
        await beforeStart()
        try await host.start()
        try await onReady(host)
        SystemdNotifier.notify("READY=1\nSTATUS=serving \(host.listeners.count) listeners")
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in hangups {
                    if supervised {
                        logger.notice("SIGHUP ignored: the supervisor reloads by starting new workers")
                    } else {
                        await reload()
                    }
                }
            }
            try? await gracefulShutdown()
            group.cancelAll()
        }
        SystemdNotifier.notify("STOPPING=1")
        logger.notice(supervised ? "worker draining" : "shutting down", metadata: ["grace_s": "\(host.plan.shutdownGrace)"])
        // A worker's counters are the host's (shared): the supervisor writes the summary.
        // A worker tells the supervisor once it no longer reads its listening sockets (the new
        // generation starts reading them then: one process at a time per socket).
        await host.shutdown(grace: host.plan.shutdownGrace, summary: !supervised, listenersClosed: { [supervised] in
            if supervised { SystemdNotifier.notify("X_INETKIT_LISTENERS_CLOSED=1") }
        })
    }

    private func reload() async {
        SystemdNotifier.notify("RELOADING=1")
        defer { SystemdNotifier.notify("READY=1") }
        let plan: HostPlan
        do {
            plan = try reloadPlan()
        } catch {
            logger.error("reload failed; the previous configuration stays in force", metadata: ["error": "\(error)"])
            return
        }
        let changes = await host.apply(plan)
        logger.notice("configuration reloaded", metadata: ["changes": .array(changes.map { .string($0) })])
        await onReload(host, changes)
    }
}
