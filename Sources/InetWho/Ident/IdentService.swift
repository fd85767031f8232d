import InetCore
import InetLine
import Logging
import NIOCore
import NIOPosix

/// ident (RFC 1413) on TCP 113: `lport , rport` names a connection from the asker's port
/// `rport` to this host's port `lport`; the answer is the configured user (or HIDDEN-USER) only
/// when the kernel's socket table holds that connection, NO-USER otherwise. One query, then close.
public struct IdentService: InetService {
    public static let keys: Set<String> = ["user", "system", "query_timeout", "max_query_bytes", "max_table_bytes"]

    public static let descriptor = ServiceDescriptor(
        name: "ident", wellKnownPort: 113, transports: [.tcp], optionKeys: keys,
        summary: "says who owns a connection to this host (RFC 1413), only for real ones"
    ) { options throws(ConfigError) in try IdentService(options) }

    public struct Settings: Sendable, Equatable {
        /// The user reported for every real connection; nil reports HIDDEN-USER.
        public var user: String?
        public var system = "UNIX"
        public var queryTimeout = 60.0
        /// RFC 1413 §6: a query is at most 1000 characters.
        public var maximumQuery = 1000
        /// How much of /proc/net/tcp{,6} is read per query.
        public var maximumTable = 32 << 20

        public init(user: String? = nil) {
            self.user = user
        }
    }

    public let settings: Settings
    let logger = Logger(label: "inetkit.ident")

    public init(settings: Settings) {
        self.settings = settings
    }

    init(_ options: ServiceOptions) throws(ConfigError) {
        var settings = Settings()
        let reader = options.reader
        func token(_ key: String) throws(ConfigError) -> String? {
            guard let text = try reader?.string(key) else { return nil }
            guard (1...64).contains(text.utf8.count), text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: ":") && $0 != UInt8(ascii: ",") }) else {
                throw options.error(key, "expected 1 to 64 printable ASCII characters without spaces, ':' or ','")
            }
            return text
        }
        settings.user = try token("user")
        if let system = try token("system") { settings.system = system }
        if let value = try reader?.seconds("query_timeout", range: 0.01...3600) { settings.queryTimeout = value }
        if let value = try reader?.int("max_query_bytes", range: 16...65_536) { settings.maximumQuery = value }
        if let value = try reader?.int("max_table_bytes", range: 4096...(1 << 30)) { settings.maximumTable = value }
        self.init(settings: settings)
    }

    public func configureTCPConnection(_ channel: any Channel) throws {
        let session = IdentSession(settings: settings)
        try channel.pipeline.syncOperations.addHandler(LineProtocolHandler(session: session, effects: IdentEffects(limit: settings.maximumTable), tls: nil, logger: logger))
    }
}

/// What an ident session asks: is there a live connection from `local` to `remote`?
struct IdentLookup {
    var local: SocketTable.Endpoint
    var remote: SocketTable.Endpoint
}

final class IdentSession: LineSession {
    typealias Effect = IdentLookup
    typealias Outcome = Bool

    let settings: IdentService.Settings
    private var local: [UInt8]?
    private var peer: [UInt8]?
    private var asked: IdentQuery?

    init(settings: IdentService.Settings) {
        self.settings = settings
    }

    var maximumLineLength: Int { settings.maximumQuery }
    var timeout: (seconds: Double, reply: String) { (settings.queryTimeout, "") }

    /// The address bytes of a socket address (read from the sockaddr: sockaddr_in keeps them
    /// at offset 4, sockaddr_in6 at offset 8).
    static func bytes(_ address: SocketAddress?) -> [UInt8]? {
        guard let address else { return nil }
        return address.withSockAddr { pointer, length -> [UInt8]? in
            let raw = UnsafeRawBufferPointer(start: UnsafeRawPointer(pointer), count: length)
            switch address.protocol {
            case .inet where length >= 8: return Array(raw[4..<8])
            case .inet6 where length >= 24: return SocketTable.Endpoint.unmapped(Array(raw[8..<24]))
            default: return nil
            }
        }
    }

    func start(context: LineSessionContext) -> [LineAction<IdentLookup>] {
        local = Self.bytes(context.local)
        peer = Self.bytes(context.peer)
        return context.overAddressLimit ? [.close] : []
    }

    func receive(line: ByteBuffer, ending: LineEnding) -> [LineAction<IdentLookup>] {
        switch IdentQuery.parse(line.readableBytesView) {
        case .failure(.invalidPort(let server, let client)):
            return [.event(LineEvent("ident.query", [("answer", .string(IdentError.invalidPort.rawValue))])),
                    .reply(IdentQuery.reply(ports: "\(server) , \(client)", .error(.invalidPort))), .close]
        case .failure(.malformed):
            return [.event(LineEvent("ident.query", [("answer", .string(IdentError.unknownError.rawValue)), ("malformed", .bool(true))])),
                    .reply(IdentQuery.reply(ports: "0 , 0", .error(.unknownError))), .close]
        case .success(let query):
            guard let local, let peer else {
                return [.event(Self.event(query, .error(.unknownError))), .reply(IdentQuery.reply(query, .error(.unknownError))), .close]
            }
            asked = query
            return [.perform(IdentLookup(local: SocketTable.Endpoint(address: local, port: query.serverPort),
                                         remote: SocketTable.Endpoint(address: peer, port: query.clientPort)))]
        }
    }

    func complete(_ exists: Bool) -> [LineAction<IdentLookup>] {
        guard let asked else { return [.close] }
        let answer: IdentQuery.Answer = !exists ? .error(.noUser) : settings.user.map { .user($0, system: settings.system) } ?? .error(.hiddenUser)
        return [.event(Self.event(asked, answer)), .reply(IdentQuery.reply(asked, answer)), .close]
    }

    /// The query's `ident.query` event: the two ports asked about and the answer given.
    static func event(_ query: IdentQuery, _ answer: IdentQuery.Answer) -> LineEvent {
        var fields: [(String, LineEvent.Value)] = [("server_port", .int(query.serverPort)), ("client_port", .int(query.clientPort))]
        switch answer {
        case .user(let name, _): fields += [("answer", .string("USERID")), ("user", .string(name))]
        case .error(let error): fields.append(("answer", .string(error.rawValue)))
        }
        return LineEvent("ident.query", fields)
    }

    func lineTooLong() -> [LineAction<IdentLookup>] {
        [.reply(IdentQuery.reply(ports: "0 , 0", .error(.unknownError))), .close]
    }

    func closed() -> [IdentLookup] { [] }
}

/// Looks the connection up in the kernel's socket table off the event loop.
final class IdentEffects: LineEffectRunner {
    let limit: Int

    init(limit: Int) {
        self.limit = limit
    }

    func perform(_ effect: IdentLookup, on loop: any EventLoop) -> EventLoopFuture<Bool> {
        let limit = self.limit
        return NIOThreadPool.singleton.runIfActive(eventLoop: loop) {
            SocketTable.exists(local: effect.local, remote: effect.remote, limit: limit)
        }.recover { _ in false }
    }

    func closed() {}
}
