import InetCore
import InetLine
import Logging
import NIOCore

/// finger (RFC 1288) on TCP 79: one query line, the answer, then close. It tells only about
/// the users the config lists; forwarding (`user@host`) is refused.
public struct FingerService: InetService {
    public static let keys: Set<String> = ["users", "query_timeout", "max_query_bytes", "max_line_bytes", "max_plan_lines"]

    public static let descriptor = ServiceDescriptor(
        name: "finger", wellKnownPort: 79, transports: [.tcp], optionKeys: keys,
        summary: "tells about the users the config lists (RFC 1288)"
    ) { options throws(ConfigError) in try FingerService(options) }

    public let directory: FingerDirectory
    let queryTimeout: Double
    let maximumQuery: Int
    let logger = Logger(label: "inetkit.finger")

    public init(directory: FingerDirectory, queryTimeout: Double = 30, maximumQuery: Int = 512) {
        self.directory = directory
        self.queryTimeout = queryTimeout
        self.maximumQuery = maximumQuery
    }

    init(_ options: ServiceOptions) throws(ConfigError) {
        let reader = options.reader
        var directory = FingerDirectory(users: try FingerDirectory.users(reader))
        if let width = try reader?.int("max_line_bytes", range: 40...4096) { directory.lineWidth = width }
        if let lines = try reader?.int("max_plan_lines", range: 0...10_000) { directory.planLines = lines }
        self.init(directory: directory,
                  queryTimeout: try reader?.seconds("query_timeout", range: 0.01...3600) ?? 30,
                  maximumQuery: try reader?.int("max_query_bytes", range: 16...65_536) ?? 512)
    }

    public func configureTCPConnection(_ channel: any Channel) throws {
        let session = FingerSession(directory: directory, timeout: queryTimeout, maximumLineLength: maximumQuery)
        try channel.pipeline.syncOperations.addHandler(LineProtocolHandler(session: session, effects: NoLineEffects(), tls: nil, logger: logger))
    }
}

/// One finger connection: a query, its answer, close.
final class FingerSession: LineSession {
    typealias Effect = Never
    typealias Outcome = Never

    let directory: FingerDirectory
    let timeoutSeconds: Double
    let maximumLineLength: Int

    init(directory: FingerDirectory, timeout: Double, maximumLineLength: Int) {
        self.directory = directory
        self.timeoutSeconds = timeout
        self.maximumLineLength = maximumLineLength
    }

    func start(context: LineSessionContext) -> [LineAction<Never>] {
        context.overAddressLimit ? [.reply("finger: too many connections from your address\r\n"), .close] : []
    }

    func receive(line: ByteBuffer, ending: LineEnding) -> [LineAction<Never>] {
        let query = FingerQuery.parse(line.readableBytesView)
        return [.event(Self.event(query, directory: directory)), .reply(directory.answer(query)), .close]
    }

    /// The query's `finger.query` event: who was asked for, in which form, and what was told.
    static func event(_ query: FingerQuery, directory: FingerDirectory) -> LineEvent {
        var fields: [(String, LineEvent.Value)] = [("verbose", .bool(query.verbose))]
        if let user = query.user { fields.append(("user", .string(user))) }
        let outcome: String
        if query.forward {
            outcome = "forwarding refused"
        } else if let user = query.user {
            let found = directory.matching(user).map(\.name)
            fields.append(("matched", .strings(found)))
            outcome = found.isEmpty ? "no such user" : "told"
        } else {
            outcome = "listed \(directory.users.count) users"
        }
        fields.append(("outcome", .string(outcome)))
        return LineEvent("finger.query", fields)
    }

    func lineTooLong() -> [LineAction<Never>] {
        [.reply("finger: query longer than \(maximumLineLength) bytes\r\n"), .close]
    }

    func complete(_ outcome: Never) -> [LineAction<Never>] {}

    var timeout: (seconds: Double, reply: String) { (timeoutSeconds, "finger: no query within \(Int(timeoutSeconds)) s\r\n") }

    func closed() -> [Never] { [] }
}

/// The effect runner of a session that has no effects.
final class NoLineEffects: LineEffectRunner {
    func perform(_ effect: Never, on loop: any EventLoop) -> EventLoopFuture<Never> {}
    func closed() {}
}
