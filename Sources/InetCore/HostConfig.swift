import NIOCore
import Logging

/// The configuration file, parsed and checked, before the command line is applied.
public struct HostConfig: Sendable {
    /// `bind`: addresses every service listens on; `nil` means 127.0.0.1 and ::1 (where present).
    public var bind: [String]?
    /// `port_offset`: added to every well-known port; `nil` means the automatic rule.
    public var portOffset: Int?
    /// `data_dir`: where services keep their files.
    public var dataDirectory: String = "./inetkit-data"
    /// `shutdown_grace`: seconds open connections get to finish after SIGTERM/SIGINT.
    public var shutdownGrace: Double = 10
    /// `log_level` and `log_format`.
    public var logLevel: Logger.Level?
    public var logFormat: LogFormat?
    /// `log_buffer_bytes`: log lines waiting for their destination; past it they are dropped
    /// and counted, never waited for.
    public var logBufferBytes = LogSink.defaultCapacity
    /// `pin_event_loops`: each event loop of a process held on its own CPU, the one whose
    /// datagrams its UDP sockets receive (when the CPUs the process may use match the loops).
    public var pinEventLoops = false
    /// `limits`: defaults for every service.
    public var limits = Limits()
    /// The keys the file gives under `limits:` (a service's own defaults yield to them).
    public var limitKeys: Set<String> = []
    /// `services.<name>`: the services the file mentions.
    public var services: [String: ConfigReader] = [:]
    /// The file this came from (`<defaults>` when none).
    public var file: String = "<defaults>"
    /// `user` and `group`: the account workers run as when started as root.
    public var user: String?
    public var group: String?
    /// `isolation`: `workers` (default: a supervisor and worker processes) or `none` (one process).
    public var isolation: Isolation?
    /// `workers`: worker name → the services it runs (services not named keep their default worker).
    public var workers: [(name: String, services: [String])] = []
    /// `restart_backoff_max`: the longest wait before a worker that keeps crashing is started again.
    public var restartBackoffMax: Double = 30
    /// `clock_offset`: seconds added to the time NTP, daytime and time tell (default 0).
    public var clock = HostClock()
    /// `events:` (what the host records of every exchange).
    public var events = EventSettings()
    /// The line of `workers:` (for errors found later).
    public var workersLine: Int?

    public init() {}

    static let topLevelKeys: Set<String> = ["bind", "port_offset", "data_dir", "shutdown_grace", "log_level", "log_format", "log_buffer_bytes", "pin_event_loops", "limits", "services", "user", "group", "isolation", "workers", "restart_backoff_max", "clock_offset", "events", "report"]
    static let commonServiceKeys: Set<String> = Limits.keys.union(["enabled", "port", "transports"])

    /// Parses a config file's text; checks every key against the catalog of services.
    public static func parse(yaml: String, file: String, catalog: [ServiceDescriptor]) throws(ConfigError) -> HostConfig {
        let root = try ConfigReader(ConfigValue.parse(yaml: yaml, file: file), file: file, path: "")
        try root.rejectUnknownKeys(allowed: topLevelKeys)
        var config = HostConfig()
        config.file = file
        if let bind = try root.stringList("bind") {
            guard !bind.isEmpty else { throw root.error("bind", "needs at least one address") }
            for address in bind where !BindAddress.isNumeric(address) {
                throw root.error("bind", "'\(address)' is not a numeric IPv4 or IPv6 address")
            }
            config.bind = bind
        }
        config.portOffset = try root.int("port_offset", range: 0...65_000)
        if let dir = try root.string("data_dir") {
            guard !dir.isEmpty else { throw root.error("data_dir", "must not be empty") }
            config.dataDirectory = dir
        }
        if let grace = try root.seconds("shutdown_grace", range: 0...3600) { config.shutdownGrace = grace }
        if let level = try root.string("log_level") {
            guard let parsed = Logger.Level(rawValue: level.lowercased()) else {
                throw root.error("log_level", "expected one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            config.logLevel = parsed
        }
        if let format = try root.string("log_format") {
            guard let parsed = LogFormat(rawValue: format) else { throw root.error("log_format", "expected text or json") }
            config.logFormat = parsed
        }
        if let bytes = try root.int("log_buffer_bytes", range: 65_536...(1 << 30)) { config.logBufferBytes = bytes }
        if let pin = try root.bool("pin_event_loops") { config.pinEventLoops = pin }
        for key in ["user", "group"] {
            if let name = try root.string(key) {
                guard !name.isEmpty, name.utf8.count <= 64, !name.contains(where: { $0 == ":" || $0 == "/" || $0.isWhitespace }) else {
                    throw root.error(key, "expected an account name or number")
                }
                if key == "user" { config.user = name } else { config.group = name }
            }
        }
        if let offset = try root.seconds("clock_offset", range: -HostClock.maximumOffset...HostClock.maximumOffset) {
            config.clock = HostClock(offset: offset)
        }
        if let backoff = try root.seconds("restart_backoff_max", range: 0.1...3600) { config.restartBackoffMax = backoff }
        if let isolation = try root.string("isolation") {
            guard let parsed = Isolation(rawValue: isolation) else { throw root.error("isolation", "expected workers or none") }
            config.isolation = parsed
        }
        if let workers = try root.map("workers") {
            let known = Set(catalog.map(\.name))
            var seen: [String: String] = [:]
            config.workersLine = root.value("workers")?.line
            for name in workers.keys {
                guard !name.isEmpty, name.utf8.count <= 32, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
                    throw workers.error(name, "a worker name is letters, digits, - and _ (at most 32)")
                }
                guard let services = try workers.stringList(name), !services.isEmpty else {
                    throw workers.error(name, "expected a list of services")
                }
                for service in services {
                    guard known.contains(service) else {
                        throw workers.error(name, "unknown service '\(service)' (known: \(catalog.map(\.name).joined(separator: ", ")))")
                    }
                    if let other = seen[service] { throw workers.error(name, "\(service) is already in worker '\(other)'") }
                    seen[service] = name
                }
                config.workers.append((name, services))
            }
        }
        if let events = try root.map("events") { config.events = try EventSettings(reader: events) }
        if let report = try root.map("report") {
            try report.rejectUnknownKeys(allowed: ["show_credentials"])
            config.events.showCredentials = try report.bool("show_credentials") ?? false
        }
        if let limits = try root.map("limits") {
            try limits.rejectUnknownKeys(allowed: Limits.keys)
            config.limits = try config.limits.overridden(by: limits)
            config.limitKeys = Set(limits.keys)
        }
        if let services = try root.map("services") {
            let byName = Dictionary(uniqueKeysWithValues: catalog.map { ($0.name, $0) })
            for name in services.keys {
                guard let descriptor = byName[name] else {
                    throw ConfigError(
                        file: file, key: services.keyPath(name), line: services.value(name)?.line,
                        message: "unknown service (known: \(catalog.map(\.name).joined(separator: ", ")))")
                }
                let reader = try services.map(name) ?? ConfigReader(.map([], line: 0), file: file, path: services.keyPath(name))
                try reader.rejectUnknownKeys(allowed: commonServiceKeys.union(descriptor.optionKeys))
                // Check the common keys' values now, so a bad one is reported by parse alone.
                _ = try reader.bool("enabled")
                _ = try reader.int("port", range: 0...65_535)
                _ = try reader.stringList("transports")
                _ = try config.limits.overridden(by: reader)
                config.services[name] = reader
            }
        }
        return config
    }

    /// The folder of the config file, for resolving relative paths ("" without a file).
    public var directory: String {
        guard file != "<defaults>", let slash = file.lastIndex(of: "/") else { return "" }
        return String(file[..<slash])
    }
}

/// How the host runs its services.
public enum Isolation: String, Sendable {
    /// A supervisor that holds the sockets and worker processes that serve them.
    case workers
    /// Everything in one process.
    case none
}

/// How log lines are written.
public enum LogFormat: String, Sendable, CaseIterable {
    case text
    case json
}

/// What the command line adds to or overrides in the file.
public struct HostOverrides: Sendable {
    public var bind: [String]?
    public var portOffset: Int?
    /// `--services`: run only these.
    public var onlyServices: [String]?
    /// A worker: services outside `onlyServices` are not even created (another process runs them).
    public var createOnlyListed: Bool

    public init(bind: [String]? = nil, portOffset: Int? = nil, onlyServices: [String]? = nil, createOnlyListed: Bool = false) {
        self.bind = bind
        self.portOffset = portOffset
        self.onlyServices = onlyServices
        self.createOnlyListed = createOnlyListed
    }
}

/// One service as the host will run it.
public struct PlannedService: Sendable {
    public var descriptor: ServiceDescriptor
    public var service: any InetService
    public var enabled: Bool
    /// The port to bind (0: any free port).
    public var port: Int
    public var transports: [Transport]
    public var limits: Limits
    /// `services.<name>` as the file gives it (nil when the file does not mention the service).
    public var options: ConfigValue?
}

/// Everything the host needs to run: the config file and the command line resolved together.
public struct HostPlan: Sendable {
    public var bindAddresses: [BindAddress]
    public var portPlan: PortPlan
    public var shutdownGrace: Double
    public var dataDirectory: String
    public var services: [PlannedService]
    /// What the host records of every exchange.
    public var events: EventSettings = EventSettings()
    /// `pin_event_loops`.
    public var pinEventLoops = false
    /// Filled in by the host once it runs; services read it (status page, SNMP).
    public var directory: HostDirectory

    /// Resolves ports, addresses and services; creates each enabled service.
    public static func make(
        config: HostConfig,
        overrides: HostOverrides,
        catalog: [ServiceDescriptor],
        canBindPrivilegedPorts: Bool,
        directory: HostDirectory = HostDirectory()
    ) throws(ConfigError) -> HostPlan {
        if let only = overrides.onlyServices {
            let known = Set(catalog.map(\.name))
            for name in only where !known.contains(name) {
                throw ConfigError(file: "--services", key: nil, line: nil, message: "unknown service '\(name)' (known: \(catalog.map(\.name).joined(separator: ", ")))")
            }
        }
        let portPlan = PortPlan(explicitOffset: overrides.portOffset ?? config.portOffset, canBindPrivilegedPorts: canBindPrivilegedPorts)
        let bind: [BindAddress]
        if let explicit = overrides.bind ?? config.bind {
            var addresses: [BindAddress] = []
            for address in explicit {
                guard BindAddress.isNumeric(address) else {
                    throw ConfigError(file: overrides.bind != nil ? "--bind" : config.file, key: "bind", line: nil, message: "'\(address)' is not a numeric IPv4 or IPv6 address")
                }
                if !addresses.contains(where: { $0.host == address }) { addresses.append(BindAddress(host: address, optional: false)) }
            }
            bind = addresses
        } else {
            bind = BindAddress.defaults
        }
        var services: [PlannedService] = []
        var uploadFolders: [String] = []
        // Where SMTP delivers, for the services that show the mail (the HTTP API).
        directory.mailDirectory = try mailDirectory(config)
        for descriptor in catalog {
            let reader = config.services[descriptor.name]
            var enabled = try reader?.bool("enabled") ?? descriptor.enabledByDefault(reader)
            // Whether the host runs it at all (a worker runs only its own, but knows the rest).
            let enabledOnHost = enabled
            if let only = overrides.onlyServices { enabled = only.contains(descriptor.name) }
            let explicitPort = try reader?.int("port", range: 0...65_535)
            var transports = descriptor.transports
            if let names = try reader?.stringList("transports") {
                var chosen: [Transport] = []
                for name in names {
                    guard let transport = Transport(rawValue: name), descriptor.transports.contains(transport) else {
                        throw reader!.error("transports", "'\(name)' is not a transport of \(descriptor.name) (it speaks \(descriptor.transports.map(\.rawValue).joined(separator: ", ")))")
                    }
                    if !chosen.contains(transport) { chosen.append(transport) }
                }
                guard !chosen.isEmpty else { throw reader!.error("transports", "needs at least one transport") }
                transports = chosen
            }
            var limits = config.limits
            if let rate = descriptor.defaultUDPRate {
                if !config.limitKeys.contains("udp_rate") { limits.udpRate = rate.rate }
                if !config.limitKeys.contains("udp_burst") { limits.udpBurst = rate.burst }
            }
            if let idle = descriptor.defaultIdleTimeout, !config.limitKeys.contains("idle_timeout") { limits.idleTimeout = idle }
            if let buffer = descriptor.defaultUDPReceiveBuffer, !config.limitKeys.contains("udp_receive_buffer") { limits.udpReceiveBuffer = buffer }
            if let reader { limits = try limits.overridden(by: reader) }
            var serviceReader = reader
            if let sibling = descriptor.inheritsOptionsOf, let base = config.services[sibling] {
                let own = reader ?? (try? ConfigReader(.map([], line: 0), file: config.file, path: "services.\(descriptor.name)"))
                serviceReader = own?.inheriting(from: base, except: HostConfig.commonServiceKeys)
            }
            let options = ServiceOptions(reader: serviceReader, dataDirectory: config.dataDirectory, configDirectory: config.directory, host: directory, clock: config.clock)
            if enabledOnHost, let folders = descriptor.uploadFolders {
                for folder in try folders(options) where !uploadFolders.contains(folder) { uploadFolders.append(folder) }
            }
            // Every service that runs, or that the file configures, is created now, so a bad
            // option is reported at once and not only when SIGHUP later enables the service.
            let service: any InetService
            let elsewhere = overrides.createOnlyListed && !(overrides.onlyServices ?? []).contains(descriptor.name)
            if !elsewhere && (enabled || reader != nil) {
                service = try descriptor.make(options)
            } else {
                service = UnconfiguredService(name: descriptor.name)
            }
            services.append(PlannedService(
                descriptor: descriptor, service: service, enabled: enabled,
                port: portPlan.port(wellKnown: descriptor.wellKnownPort, configured: explicitPort),
                transports: transports, limits: limits, options: serviceReader?.value))
        }
        directory.uploadFolders = uploadFolders
        return HostPlan(bindAddresses: bind, portPlan: portPlan, shutdownGrace: config.shutdownGrace, dataDirectory: config.dataDirectory, services: services, events: config.events,
                        pinEventLoops: config.pinEventLoops, directory: directory)
    }
}

extension HostPlan {
    /// Where SMTP delivers (`services.smtp.mail_dir`, default `<data_dir>/mail`).
    public static func mailDirectory(_ config: HostConfig) throws(ConfigError) -> String {
        try ServiceOptions(reader: config.services["smtp"], dataDirectory: config.dataDirectory,
                           configDirectory: config.directory).path("mail_dir", default: "mail")
    }
}

/// Stands in for a service that is neither enabled nor configured (e.g. HTTPS without a
/// certificate): a later reload that enables it creates the real one.
struct UnconfiguredService: InetService {
    var name: String

    func prepare() throws {
        throw ConfigError(file: "<config>", key: "services.\(name)", line: nil, message: "the service is not configured")
    }
}

/// An address the host listens on.
public struct BindAddress: Sendable, Equatable {
    public var host: String
    /// A default address that is skipped (with a notice) when the machine lacks it, e.g. ::1 without IPv6.
    public var optional: Bool

    public init(host: String, optional: Bool) {
        self.host = host
        self.optional = optional
    }

    public static let defaults = [BindAddress(host: "127.0.0.1", optional: false), BindAddress(host: "::1", optional: true)]

    /// `host:port`, with brackets around IPv6.
    public func display(port: Int) -> String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// True for a literal IPv4 or IPv6 address (the host binds addresses, not names).
    public static func isNumeric(_ text: String) -> Bool {
        (try? SocketAddress(ipAddress: text, port: 0)) != nil
    }
}
