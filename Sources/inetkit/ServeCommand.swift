import ArgumentParser
import InetCore
import InetDNS
import InetFTP
import InetHTTP
import InetMail
import InetNTP
import InetSyslog
import InetTFTP
import InetWho
import InetSNMP
import InetSimple
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import UnixSignals
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Every service this build of InetKit can run.
let serviceCatalog: [ServiceDescriptor] = SimpleServices.catalog + [
    FTPService.descriptor, SMTPService.descriptor, DNSService.descriptor, HTTPService.descriptor, POP3Service.descriptor, SNMPService.descriptor,
    HTTPSService.descriptor, NTPService.descriptor, FingerService.descriptor, IdentService.descriptor,
    SMTPService.implicitTLSDescriptor, POP3Service.implicitTLSDescriptor, FTPService.implicitTLSDescriptor,
    TFTPService.descriptor, SyslogService.descriptor,
]

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the host: every enabled service on its TCP and UDP ports, until SIGTERM or SIGINT.",
        discussion: """
            With no options it serves echo, discard, daytime, qotd, chargen, time, ftp, smtp, dns, http, pop3, snmp, ntp, finger, ident, https, smtps, pop3s, ftps, tftp and syslog \
            (TLS with the certificate of the config, or one generated into <data_dir>/tls/ on first start) on 127.0.0.1 and ::1, \
            on their well-known ports when this process may bind them, else on port + 10000. \
            This process binds every listener and serves nothing itself: each protocol family runs in \
            a worker process (`inetkit worker`) that is restarted at once if it dies; started as root, \
            the workers run as user: (default: whoever ran sudo, else inetkit, else nobody). \
            SIGHUP re-reads --config and replaces the workers; SIGUSR2 re-executes the binary on disk \
            (an upgrade in place); SIGTERM/SIGINT stop accepting and let connections finish \
            within shutdown_grace (default 10 s). --isolation none runs everything in one process.
            """
    )

    @Option(name: .long, help: "Run only these services (comma-separated), e.g. echo,daytime.")
    var services: String?

    @OptionGroup var options: HostOptions

    var config: String? { options.config }
    var portOffset: Int? { options.portOffset }
    var bind: [String] { options.bind }
    var portsFile: String? { options.portsFile }
    var logLevel: String? { options.logLevel }
    var logFormat: String? { options.logFormat }

    func validate() throws {
        if let isolation, Isolation(rawValue: isolation) == nil { throw ValidationError("--isolation must be workers or none") }
    }

    @Option(name: .long, help: "workers (default: a supervisor holds the sockets, worker processes serve them) or none (one process).")
    var isolation: String?

    func run() async throws {
        raiseOpenFileLimit()
        if let upgrade = ProcessInfo.processInfo.environment["INETKIT_UPGRADE"] {
            unsetenv("INETKIT_UPGRADE")
            runAfterUpgrade(upgrade)
        }
        let fileConfig: HostConfig
        let configText: String
        do {
            (fileConfig, configText) = try HostSetup.loadConfigAndText(config)
        } catch {
            fail("\(error)", code: 2)
        }
        HostSetup.bootstrapLogging(level: logLevel, format: logFormat, config: fileConfig)
        let logger = Logger(label: "inetkit")
        let mode = isolation.flatMap(Isolation.init(rawValue:)) ?? fileConfig.isolation ?? .workers

        let privileged = HostSetup.canBindPrivilegedPorts
        do {
            try HostSetup.ensureCertificate(fileConfig, overrides: overrides, logger: logger)
        } catch {
            fail("\(error)", code: 1)
        }
        let plan: HostPlan
        do {
            plan = try HostPlan.make(config: fileConfig, overrides: overrides, catalog: serviceCatalog, canBindPrivilegedPorts: privileged)
        } catch {
            fail("\(error)", code: 2)
        }
        switch mode {
        case .workers:
            runSupervisor(config: fileConfig, configText: configText, plan: plan, logger: logger)
        case .none:
            try await runInOneProcess(config: fileConfig, plan: plan, privileged: privileged, logger: logger)
        }
    }

    private var overrides: HostOverrides {
        HostOverrides(
            bind: bind.isEmpty ? nil : bind,
            portOffset: portOffset,
            onlyServices: services.map { $0.split(separator: ",").map { String($0).trimming(" ") } })
    }

    private var supervisorOptions: Supervisor.Options {
        Supervisor.Options(configPath: config, overrides: overrides, portsFile: portsFile, logLevel: logLevel, logFormat: logFormat,
                           bindArguments: bind)
    }

    private func runSupervisor(config fileConfig: HostConfig, configText: String, plan: HostPlan, logger: Logger) -> Never {
        let supervisor: Supervisor
        do {
            let (region, sockets, account) = try Supervisor.prepare(options: supervisorOptions, config: fileConfig, plan: plan, logger: logger)
            supervisor = try Supervisor(options: supervisorOptions, config: fileConfig, configText: configText, plan: plan,
                                        sockets: sockets, region: region, account: account, logger: logger)
        } catch let error as BindError {
            fail("\(error)", code: 1)
        } catch let error as RunAccount.Failure {
            fail("\(error)", code: 2)
        } catch {
            fail("\(error)", code: 1)
        }
        Glibc.exit(supervisor.run())
    }

    /// The new image after SIGUSR2: the sockets, region and workers of the old one are handed over.
    private func runAfterUpgrade(_ encoded: String) -> Never {
        guard let state = Supervisor.UpgradeState.decode(encoded) else { fail("INETKIT_UPGRADE: not understood", code: 1) }
        let configText: (text: String, file: String)?
        do {
            configText = try WorkerCommand.configFromSupervisor([
                "INETKIT_CONFIG_FD": "\(state.config)", "INETKIT_CONFIG_NAME": config ?? "<defaults>",
            ], keepOpen: true)
        } catch {
            fail("\(error)", code: 1)
        }
        let text = configText?.text ?? ""
        let fileConfig: HostConfig
        do {
            fileConfig = config == nil ? HostConfig() : try HostConfig.parse(yaml: text, file: config!, catalog: serviceCatalog)
        } catch {
            fail("\(error)", code: 2)
        }
        HostSetup.bootstrapLogging(level: logLevel, format: logFormat, config: fileConfig)
        let logger = Logger(label: "inetkit")
        do {
            let plan = try HostPlan.make(config: fileConfig, overrides: overrides, catalog: serviceCatalog,
                                         canBindPrivilegedPorts: HostSetup.canBindPrivilegedPorts)
            let region = try SharedRegion.attach(descriptor: state.region)
            _ = fcntl(state.region, F_SETFD, FD_CLOEXEC)
            _ = fcntl(state.config, F_SETFD, FD_CLOEXEC)
            var sockets: [ListeningSocket] = []
            for entry in state.sockets {
                let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, let fd = Int32(parts[0]), let socket = ListeningSocket.describe(fd, service: parts[1]) else { continue }
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                // The address as the plan spells it (describe reads it back numerically).
                var named = socket
                if let address = plan.bindAddresses.first(where: { $0.host == socket.address.host || (try? SocketAddress(ipAddress: $0.host, port: 0))?.ipAddress == socket.address.host }) {
                    named.address = address
                }
                sockets.append(named)
            }
            let supervisor = try Supervisor(options: supervisorOptions, config: fileConfig, configText: text, plan: plan, sockets: sockets,
                                            region: region, account: try HostSetup.runAccount(fileConfig), logger: logger,
                                            generation: state.generation, configDescriptor: state.config)
            Glibc.exit(supervisor.runAfterUpgrade(adopted: state.workers))
        } catch {
            fail("upgrade: \(error)", code: 1)
        }
    }

    /// `isolation: none`: every service in this process (root binds first, then drops privileges).
    private func runInOneProcess(config fileConfig: HostConfig, plan: HostPlan, privileged: Bool, logger: Logger) async throws {
        var inherited: [ListeningSocket] = []
        var portsWritten = false
        do {
            HostSetup.announceDashboardToken(plan, logger: logger)
            if let account = try HostSetup.runAccount(fileConfig, logger: logger) {
                inherited = try HostSetup.bindAll(plan, udpSockets: HostSetup.udpSocketsPerAddress, logger: logger)
                HostSetup.prepareDataDirectory(plan, for: account, logger: logger)
                // The ports file may be where only root writes: written now, while root (every
                // socket is bound and queues what arrives until the services start).
                if let portsFile {
                    var ports: [String: [Transport: Int]] = [:]
                    for socket in inherited { ports[socket.service, default: [:]][socket.transport] = socket.port }
                    try PortsReport.writeJSON(ports, order: serviceCatalog.map(\.name), to: portsFile)
                    portsWritten = true
                }
                try account.drop()
                logger.notice("running as \(account)")
            }
        } catch let error as BindError {
            fail("\(error)", code: 1)
        } catch {
            fail("\(error)", code: 2)
        }
        let group = MultiThreadedEventLoopGroup.singleton
        let host = InetHost(plan: plan, group: group, logger: logger, inherited: inherited, journal: true)
        let portsFile = self.portsFile
        let portsAlreadyWritten = portsWritten
        let overrides = self.overrides
        let configPath = config
        let reloadPlan: @Sendable () throws -> HostPlan = {
            // The new services see the same host (status pages, SNMP, built-in zone, uptime).
            try HostPlan.make(config: try HostSetup.loadConfig(configPath), overrides: overrides, catalog: serviceCatalog,
                              canBindPrivilegedPorts: privileged, directory: host.directory)
        }
        let hostService = HostService(
            host: host, logger: logger, reloadPlan: reloadPlan,
            onReady: { host in
                print(PortsReport.table(host.listeners, offset: host.plan.portPlan.offset), terminator: "")
                fflush(nil)
                if let portsFile, !portsAlreadyWritten { try PortsReport.writeJSON(host.ports, order: serviceCatalog.map(\.name), to: portsFile) }
            },
            onReload: { host, _ in
                if let portsFile {
                    do {
                        try PortsReport.writeJSON(host.ports, order: serviceCatalog.map(\.name), to: portsFile)
                    } catch {
                        logger.error("cannot write the ports file", metadata: ["error": "\(error)"])
                    }
                }
            })
        await HostSetup.runUntilStopped(hostService, logger: logger)
        let events = host.plan.events
        if events.enabled && events.journal { Supervisor.writeReport(dataDirectory: host.plan.dataDirectory, logger: logger) }
    }
}

/// Lifts the soft limit on open files to the hard limit, as nginx and Go programs do: the
/// default soft limit (often 1024) is less than the 1024 connections a service may hold by
/// default. Failure is harmless; the host then refuses what it cannot accept.
func raiseOpenFileLimit() {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
    limit.rlim_cur = limit.rlim_max
    _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
}

/// Prints `inetkit: error: ...` on standard error and exits.
func fail(_ message: String, code: Int32) -> Never {
    // After the lines still queued (exit writes them first), in order.
    Array("inetkit: error: \(message)\n".utf8).withUnsafeBytes { LogSink.standardError.append($0) }
    LogSink.standardError.flush()
    exit(code)
}
