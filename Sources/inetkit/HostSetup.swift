import ArgumentParser
import InetCore
import InetHTTP
import InetTLS
import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The options `serve` and `worker` share.
struct HostOptions: ParsableArguments {
    @Option(name: .long, help: "YAML configuration file (every key optional; the same for serve and worker).")
    var config: String?

    @Option(name: .long, help: "Add N to every well-known port (default: 0 if ports < 1024 can be bound, else 10000).")
    var portOffset: Int?

    @Option(name: .long, help: "Address to listen on; repeat for several (default 127.0.0.1 and ::1).")
    var bind: [String] = []

    @Option(name: .long, help: "Once every listener is bound, write {service: {tcp: port, udp: port}} as JSON here.")
    var portsFile: String?

    @Option(name: .long, help: "trace, debug, info, notice, warning, error or critical (default info).")
    var logLevel: String?

    @Option(name: .long, help: "text or json (one object per line).")
    var logFormat: String?

    func validate() throws {
        if let portOffset, !(0...65_000).contains(portOffset) { throw ValidationError("--port-offset must be 0...65000") }
        if let logLevel, Logger.Level(rawValue: logLevel.lowercased()) == nil { throw ValidationError("--log-level: unknown level '\(logLevel)'") }
        if let logFormat, LogFormat(rawValue: logFormat) == nil { throw ValidationError("--log-format must be text or json") }
    }
}

/// What `serve` and `worker` do alike before a host runs: read the config, start logging,
/// bind sockets as root, drop privileges.
enum HostSetup {
    /// Runs the host until SIGTERM/SIGINT have drained it; any error ends the process with one line.
    static func runUntilStopped(_ hostService: HostService, logger: Logger) async -> Never {
        var groupLogger = logger
        groupLogger.logLevel = .warning
        let serviceGroup = ServiceGroup(configuration: .init(
            services: [.init(service: hostService)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            cancellationSignals: [],
            logger: groupLogger))
        do {
            try await serviceGroup.run()
        } catch {
            fail("\(error)", code: 1)
        }
        exit(0)
    }

    /// Reads and checks the config file (the defaults without one).
    static func loadConfig(_ path: String?) throws -> HostConfig {
        try loadConfigAndText(path).config
    }

    /// The config and the very text it was parsed from (what the supervisor hands its workers).
    static func loadConfigAndText(_ path: String?) throws -> (config: HostConfig, text: String) {
        guard let path else { return (HostConfig(), "") }
        guard let text = readTextFile(path) else {
            throw ConfigError(file: path, key: nil, line: nil, message: "cannot read the file")
        }
        return (try HostConfig.parse(yaml: text, file: path, catalog: serviceCatalog), text)
    }

    /// The services that speak TLS (implicitly, or by STARTTLS/STLS/AUTH TLS).
    static let tlsServices = ["https", "smtps", "pop3s", "ftps", "smtp", "pop3", "ftp"]

    /// TLS with no configuration: unless every TLS service that may run names its own cert and
    /// key, makes sure the generated certificate is in `<data_dir>/tls/` (written on the first
    /// start) and logs where it is and its SHA-256 fingerprint.
    static func ensureCertificate(_ config: HostConfig, overrides: HostOverrides, logger: Logger) throws {
        let candidates = tlsServices.filter { name in
            (overrides.onlyServices.map { $0.contains(name) } ?? true) && (try? config.services[name]?.bool("enabled")) != false
        }
        guard candidates.contains(where: { !ServerTLS.isConfigured(config.services[$0]) }) else { return }
        let outcome = try DefaultCertificate.ensure(dataDirectory: config.dataDirectory,
                                                    names: DefaultCertificate.names(bind: overrides.bind ?? config.bind ?? []))
        logger.notice(outcome.created ? "generated a self-signed TLS certificate" : "TLS certificate", metadata: [
            "certificate": "\(outcome.certificate)", "sha256": "\(outcome.fingerprint)",
        ])
    }

    static func bootstrapLogging(level: String?, format: String?, config: HostConfig) {
        let level = level.flatMap { Logger.Level(rawValue: $0.lowercased()) } ?? config.logLevel ?? .info
        let format = format.flatMap(LogFormat.init(rawValue:)) ?? config.logFormat ?? .text
        LogLine.format = format
        LogSink.standardError.setCapacity(config.logBufferBytes)
        LoggingSystem.bootstrap { label in InetLogHandler(label: label, level: level, format: format) }
        // What is still queued when the process ends is written first (2 s at most).
        atexit { LogSink.standardError.flush() }
    }

    static var canBindPrivilegedPorts: Bool {
        PortPlan.processCanBindPrivilegedPorts(lowestPort: serviceCatalog.map(\.wellKnownPort).min() ?? 1)
    }

    /// Binds every enabled service of the plan as plain descriptors (root's part before it
    /// drops privileges): optional addresses the machine lacks are skipped.
    static func bindAll(_ plan: HostPlan, services: [String]? = nil, udpSockets: Int, logger: Logger) throws(BindError) -> [ListeningSocket] {
        let addresses = plan.bindAddresses.filter { address in
            guard address.optional else { return true }
            let available = InetHost.addressIsAvailable(address.host)
            if !available { logger.notice("skipping bind address: not available on this machine", metadata: ["address": "\(address.host)"]) }
            return available
        }
        var sockets: [ListeningSocket] = []
        do throws(BindError) {
            for planned in plan.services where planned.enabled && (services?.contains(planned.descriptor.name) ?? true) {
                sockets += try SocketBinder.bind(
                    service: planned.descriptor.name, transports: planned.transports, port: planned.port,
                    addresses: addresses, udpSockets: udpSockets, receiveBuffer: planned.limits.udpReceiveBuffer,
                    spreadByCPU: !planned.descriptor.udpKeepsSourceOrder)
            }
        } catch {
            for socket in sockets { socket.close() }
            throw error
        }
        return sockets
    }

    /// Started as root: the account to run as, resolved from the config and `sudo`'s variables.
    /// `INETKIT_WORKERS_AS_ROOT=1` keeps root (for a test suite that runs as root over folders
    /// only root may enter): nothing is dropped, and the log says so.
    static func runAccount(_ config: HostConfig, logger: Logger? = nil) throws -> RunAccount? {
        guard geteuid() == 0 else { return nil }
        if ProcessInfo.processInfo.environment["INETKIT_WORKERS_AS_ROOT"] == "1" {
            logger?.warning("INETKIT_WORKERS_AS_ROOT=1: services run as root and parse every protocol as root")
            return nil
        }
        return try RunAccount.resolve(user: config.user, group: config.group, environment: ProcessInfo.processInfo.environment)
    }

    /// When HTTP listens beyond loopback, the dashboard and its API ask for a token: it is made
    /// now (before the data folder is given to the account, so the workers may read it), and a
    /// new one is printed once; later starts say where it is kept.
    static func announceDashboardToken(_ plan: HostPlan, logger: Logger) {
        guard plan.events.enabled, plan.events.dashboardToken == nil,
              plan.services.contains(where: { ($0.descriptor.name == "http" || $0.descriptor.name == "https") && $0.enabled }),
              plan.bindAddresses.contains(where: { !isLoopback($0.host) })
        else { return }
        mkdir(plan.dataDirectory, 0o755)
        let source = TokenSource(dataDirectory: plan.dataDirectory)
        guard let (token, made) = source.ensure(settings: plan.events) else {
            logger.warning("the dashboard token could not be made; set events.dashboard_token", metadata: ["file": "\(source.path)"])
            return
        }
        if made {
            logger.notice("dashboard token for non-loopback clients (shown once; Authorization: Bearer or ?token=)", metadata: ["token": "\(token)", "file": "\(source.path)"])
        } else {
            logger.notice("the dashboard asks non-loopback clients for the token kept in its file", metadata: ["file": "\(source.path)"])
        }
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "::1" || host == "localhost" || host.hasPrefix("127.")
    }

    /// Prepares the data folder for the account (created if missing; what root owns in it given
    /// to the account).
    static func prepareDataDirectory(_ plan: HostPlan, for account: RunAccount, logger: Logger? = nil) {
        let path = plan.dataDirectory
        mkdir(path, 0o755)
        account.chownTree(path)
        // A folder on the way that the account may not enter (root's home, a 0700 temporary
        // folder) makes every file service fail later: say so now.
        if let closed = account.closedFolder(onTheWayTo: path) {
            logger?.warning("data_dir is out of reach of the account the services run as", metadata: [
                "data_dir": "\(path)", "closed_folder": "\(closed)", "account": "\(account)",
            ])
        }
    }

    /// The number of UDP sockets per address and port: one per core, each read by one event
    /// loop (SO_REUSEPORT spreads the datagrams).
    static var udpSocketsPerAddress: Int { max(1, System.coreCount) }
}
