import ArgumentParser
import InetCore
import InetDNS
import InetFTP
import InetHTTP
import InetMail
import InetSNMP
import InetSimple
import Logging
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
    HTTPSService.descriptor,
]

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the host: every enabled service on its TCP and UDP ports, until SIGTERM or SIGINT.",
        discussion: """
            With no options it serves echo, discard, daytime, qotd, chargen, time, ftp, smtp, dns, http, pop3 and snmp \
            (https once it has a certificate) on 127.0.0.1 and ::1, \
            on their well-known ports when this process may bind them, else on port + 10000. \
            SIGHUP re-reads --config; SIGTERM/SIGINT stop accepting and let connections finish \
            within shutdown_grace (default 10 s).
            """
    )

    @Option(name: .long, help: "YAML configuration file (every key optional).")
    var config: String?

    @Option(name: .long, help: "Add N to every well-known port (default: 0 if ports < 1024 can be bound, else 10000).")
    var portOffset: Int?

    @Option(name: .long, help: "Address to listen on; repeat for several (default 127.0.0.1 and ::1).")
    var bind: [String] = []

    @Option(name: .long, help: "Run only these services (comma-separated), e.g. echo,daytime.")
    var services: String?

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

    func run() async throws {
        raiseOpenFileLimit()
        let fileConfig: HostConfig
        do {
            fileConfig = try loadConfig()
        } catch {
            fail("\(error)", code: 2)
        }
        let level = logLevel.flatMap { Logger.Level(rawValue: $0.lowercased()) } ?? fileConfig.logLevel ?? .info
        let format = logFormat.flatMap(LogFormat.init(rawValue:)) ?? fileConfig.logFormat ?? .text
        LoggingSystem.bootstrap { label in InetLogHandler(label: label, level: level, format: format) }
        let logger = Logger(label: "inetkit")

        let overrides = HostOverrides(
            bind: bind.isEmpty ? nil : bind,
            portOffset: portOffset,
            onlyServices: services.map { $0.split(separator: ",").map { String($0).trimming(" ") } })
        let privileged = PortPlan.processCanBindPrivilegedPorts(lowestPort: serviceCatalog.map(\.wellKnownPort).min() ?? 1)
        let plan: HostPlan
        do {
            plan = try HostPlan.make(config: fileConfig, overrides: overrides, catalog: serviceCatalog, canBindPrivilegedPorts: privileged)
        } catch {
            fail("\(error)", code: 2)
        }

        let group = MultiThreadedEventLoopGroup.singleton
        let host = InetHost(plan: plan, group: group, logger: logger)
        let portsFile = self.portsFile
        let reloadPlan: @Sendable () throws -> HostPlan = { [self] in
            // The new services see the same host (status pages, SNMP, built-in zone, uptime).
            try HostPlan.make(config: try loadConfig(), overrides: overrides, catalog: serviceCatalog, canBindPrivilegedPorts: privileged,
                              directory: host.directory)
        }
        let hostService = HostService(
            host: host, logger: logger, reloadPlan: reloadPlan,
            onReady: { host in
                print(PortsReport.table(host.listeners, offset: host.plan.portPlan.offset), terminator: "")
                fflush(nil)
                if let portsFile { try PortsReport.writeJSON(host.ports, order: serviceCatalog.map(\.name), to: portsFile) }
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
        var groupLogger = logger
        groupLogger.logLevel = .warning
        let serviceGroup = ServiceGroup(configuration: .init(
            services: [.init(service: hostService)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            cancellationSignals: [],
            logger: groupLogger))
        do {
            try await serviceGroup.run()
        } catch let error as BindError {
            fail("\(error)", code: 1)
        } catch {
            fail("\(error)", code: 1)
        }
    }

    private func loadConfig() throws -> HostConfig {
        guard let path = config else { return HostConfig() }
        guard let text = readTextFile(path) else {
            throw ConfigError(file: path, key: nil, line: nil, message: "cannot read the file")
        }
        return try HostConfig.parse(yaml: text, file: path, catalog: serviceCatalog)
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
    FileHandle.standardError.write(Data("inetkit: error: \(message)\n".utf8))
    exit(code)
}
