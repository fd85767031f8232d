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
    /// `limits`: defaults for every service.
    public var limits = Limits()
    /// The keys the file gives under `limits:` (a service's own defaults yield to them).
    public var limitKeys: Set<String> = []
    /// `services.<name>`: the services the file mentions.
    public var services: [String: ConfigReader] = [:]
    /// The file this came from (`<defaults>` when none).
    public var file: String = "<defaults>"

    public init() {}

    static let topLevelKeys: Set<String> = ["bind", "port_offset", "data_dir", "shutdown_grace", "log_level", "log_format", "limits", "services"]
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

    public init(bind: [String]? = nil, portOffset: Int? = nil, onlyServices: [String]? = nil) {
        self.bind = bind
        self.portOffset = portOffset
        self.onlyServices = onlyServices
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
        for descriptor in catalog {
            let reader = config.services[descriptor.name]
            var enabled = try reader?.bool("enabled") ?? descriptor.enabledByDefault(reader)
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
            if let reader { limits = try limits.overridden(by: reader) }
            let options = ServiceOptions(reader: reader, dataDirectory: config.dataDirectory, configDirectory: config.directory, host: directory)
            // Every service that runs, or that the file configures, is created now, so a bad
            // option is reported at once and not only when SIGHUP later enables the service.
            let service: any InetService
            if enabled || reader != nil {
                service = try descriptor.make(options)
            } else {
                service = UnconfiguredService(name: descriptor.name)
            }
            services.append(PlannedService(
                descriptor: descriptor, service: service, enabled: enabled,
                port: portPlan.port(wellKnown: descriptor.wellKnownPort, configured: explicitPort),
                transports: transports, limits: limits, options: reader?.value))
        }
        return HostPlan(bindAddresses: bind, portPlan: portPlan, shutdownGrace: config.shutdownGrace, dataDirectory: config.dataDirectory, services: services, directory: directory)
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
