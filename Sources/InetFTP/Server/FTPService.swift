#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import InetCore
import InetLine
import InetTLS
import Logging
import NIOCore
import NIOSSL

/// A configured FTP account.
struct FTPUser: Sendable, Equatable {
    var name: String
    var password: String?
    /// The real folder shown to the user as `/`.
    var home: String
    var writable: Bool
    var anonymous: Bool
}

/// The FTP service's options (`services.ftp`).
struct FTPSettings: Sendable {
    /// anonymous/ftp, read-only, on the public folder; nil when `anonymous: false`.
    var anonymousRoot: String?
    var users: [String: FTPUser] = [:]
    /// Ports for passive data connections (nil: any free port).
    var passivePorts: ClosedRange<Int>?
    /// The address announced in PASV replies (for a host behind NAT); default the control
    /// connection's local address.
    var passiveAddress: String?
    var commandTimeout = 300.0
    /// Seconds to wait for a data connection, and for progress on one.
    var dataTimeout = 30.0
    var maxConnectionsPerAddress = 20
    var maxLoginFailures = 3
    var loginDelay = 1.0
    var maxErrors = 30
    static let maximumLineLength = 1024

    static let keys: Set<String> = [
        "root", "anonymous", "users", "passive_ports", "passive_address", "command_timeout", "data_timeout",
        "max_connections_per_address", "max_login_failures", "login_delay", "max_errors",
    ]

    init() {}

    init(options: ServiceOptions) throws(ConfigError) {
        let reader = options.reader
        if try reader?.bool("anonymous") ?? true {
            anonymousRoot = try options.path("root", default: "public")
        }
        if let reader, let list = reader.value("users") {
            guard case .list(let items, _) = list else { throw reader.error("users", "expected a list of {name, password, home, write}") }
            for item in items {
                let entry = try ConfigReader(item, file: reader.file, path: reader.keyPath("users"))
                try entry.rejectUnknownKeys(allowed: ["name", "password", "home", "write"])
                guard let name = try entry.string("name"), let password = try entry.string("password"), let home = try entry.string("home") else {
                    throw entry.error("name", "each user needs name, password and home")
                }
                guard !["anonymous", "ftp"].contains(name.lowercased()) else { throw entry.error("name", "'\(name)' is the anonymous login") }
                let path = home.hasPrefix("/") || options.configDirectory.isEmpty ? home : options.configDirectory + "/" + home
                users[name] = FTPUser(name: name, password: password, home: path, writable: try entry.bool("write") ?? false, anonymous: false)
            }
        }
        if let text = try reader?.string("passive_ports") {
            let parts = text.split(separator: "-").compactMap { Int($0.trimming(" ")) }
            guard parts.count == 2, parts[0] >= 1024, parts[0] <= parts[1], parts[1] <= 65_535 else {
                throw options.error("passive_ports", "expected a range such as 30000-30099 (ports 1024 and up)")
            }
            passivePorts = parts[0]...parts[1]
        }
        if let address = try reader?.string("passive_address") {
            guard CIDR(address) != nil, !address.contains("/"), !address.contains(":") else {
                throw options.error("passive_address", "'\(address)' is not an IPv4 address")
            }
            passiveAddress = address
        }
        if let value = try reader?.seconds("command_timeout", range: 0.01...86_400) { commandTimeout = value }
        if let value = try reader?.seconds("data_timeout", range: 0.01...86_400) { dataTimeout = value }
        if let value = try reader?.int("max_connections_per_address", range: 1...1_000_000) { maxConnectionsPerAddress = value }
        if let value = try reader?.int("max_login_failures", range: 1...1000) { maxLoginFailures = value }
        if let value = try reader?.seconds("login_delay", range: 0...60) { loginDelay = value }
        if let value = try reader?.int("max_errors", range: 1...10_000) { maxErrors = value }
    }

    /// The account for a login name (anonymous for `anonymous` and `ftp`).
    func account(_ name: String) -> FTPUser? {
        if ["anonymous", "ftp"].contains(name.lowercased()) {
            return anonymousRoot.map { FTPUser(name: "anonymous", password: nil, home: $0, writable: false, anonymous: true) }
        }
        return users[name]
    }
}

extension ServiceDescriptor {
    /// Uploads land in the homes of the users with `write: true`.
    fileprivate func withUploadFolders() -> ServiceDescriptor {
        var descriptor = self
        descriptor.uploadFolders = { options throws(ConfigError) in
            try FTPSettings(options: options).users.values.filter(\.writable).map(\.home)
        }
        return descriptor
    }
}

/// FTP on port 21 (RFC 959 with RFC 2428, 2389, 3659): anonymous read-only access to the public
/// folder and configured users in their home folders; passive and active data connections;
/// explicit FTPS (AUTH TLS) with a certificate.
public struct FTPService: InetService {
    public static let descriptor = ServiceDescriptor(
        name: "ftp", wellKnownPort: 21, transports: [.tcp], optionKeys: FTPSettings.keys.union(ServerTLS.keys),
        summary: "file transfer (RFC 959): anonymous downloads of the public folder, users with homes"
    ) { options throws(ConfigError) in
        try FTPService(options: options)
    }.withUploadFolders()

    /// FTPS (implicit TLS, port 990): the same sessions, TLS from the first byte on the control
    /// connection, data connections protected after `PROT P`; the options of `services.ftp`
    /// wherever `services.ftps` does not give its own.
    public static let implicitTLSDescriptor = ServiceDescriptor(
        name: "ftps", wellKnownPort: 990, transports: [.tcp], optionKeys: FTPSettings.keys.union(ServerTLS.keys),
        summary: "FTP with TLS from the first byte (implicit FTPS)", inheritsOptionsOf: "ftp"
    ) { options throws(ConfigError) in
        let service = try FTPService(options: options, implicitTLS: true)
        return service.tls == nil ? ServerTLS.MissingCertificate(ServerTLS.missing(options, service: "ftps")) : service
    }.withUploadFolders()

    let settings: FTPSettings
    let tls: NIOSSLContext?
    let implicitTLS: Bool
    let counter = AddressConnectionCounter()
    let logger = Logger(label: "inetkit.ftp")

    init(options: ServiceOptions, implicitTLS: Bool = false) throws(ConfigError) {
        settings = try FTPSettings(options: options)
        tls = try ServerTLS.context(options, purpose: implicitTLS ? "FTPS" : "AUTH TLS")
        self.implicitTLS = implicitTLS
    }

    init(settings: FTPSettings, tls: NIOSSLContext? = nil, implicitTLS: Bool = false) {
        self.settings = settings
        self.tls = tls
        self.implicitTLS = implicitTLS && tls != nil
    }

    public func prepare() throws {
        if let root = settings.anonymousRoot { try createDirectories(root) }
    }

    public func configureTCPConnection(_ channel: any Channel) throws {
        let session = FTPSession(settings: settings, tlsAvailable: tls != nil, tlsActive: implicitTLS, logger: logger)
        if implicitTLS, let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
        try channel.pipeline.syncOperations.addHandler(LineProtocolHandler(
            session: session, effects: FTPEffects(settings: settings, tls: tls), tls: implicitTLS ? nil : tls, logger: logger,
            admission: LineAdmission(counter: counter, limit: settings.maxConnectionsPerAddress)))
    }
}

