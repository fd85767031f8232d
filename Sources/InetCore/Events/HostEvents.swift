import NIOConcurrencyHelpers
import NIOCore

/// `events:` in the config: what the host records of every exchange, and how much.
public struct EventSettings: Sendable, Equatable {
    public static let maximumRingSize = 1_000_000
    public static let minimumEventBytes = 256
    public static let maximumEventBytes = 65_536
    public static let keys: Set<String> = [
        "enabled", "ring_size", "max_event_bytes", "hex_bytes", "transcripts",
        "journal", "journal_rotate_bytes", "journal_max_bytes", "max_subscribers", "heartbeat", "dashboard_token",
    ]

    /// Whether services emit events at all.
    public var enabled = true
    /// Events kept in memory (the ring every process shares); fixed at start.
    public var ringSize = 10_000
    /// The largest event (a slot of the ring), bytes; longer texts are cut. Fixed at start.
    public var maxEventBytes = 1024
    /// Bytes of each datagram shown as hex in its event (binary protocols).
    public var hexBytes = 64
    /// One event per line a client or server sends in the line protocols (`C:`/`S:`).
    public var transcripts = true
    /// Whether the events are appended to `<data_dir>/events/events.jsonl`.
    public var journal = true
    /// The journal file is rotated past this size.
    public var journalRotateBytes = 64 * 1024 * 1024
    /// The journal's files together stay under this (the oldest are removed).
    public var journalMaxBytes = 512 * 1024 * 1024
    /// Live subscribers (`/_inetkit/events`) at once.
    public var maxSubscribers = 64
    /// Seconds between the comments that keep an idle event stream open.
    public var heartbeat: Double = 15
    /// The token clients over a non-loopback address must give to the dashboard, the event
    /// stream and the API (default: one made at first need, kept in `<data_dir>/dashboard.token`).
    public var dashboardToken: String?
    /// `report.show_credentials`: login events carry the password tried (analysts want it; the
    /// transcripts still mask it). Off: passwords are never recorded anywhere.
    public var showCredentials = false

    public init() {}

    public init(reader: ConfigReader) throws(ConfigError) {
        try reader.rejectUnknownKeys(allowed: Self.keys)
        if let value = try reader.bool("enabled") { enabled = value }
        if let value = try reader.int("ring_size", range: 100...Self.maximumRingSize) { ringSize = value }
        if let value = try reader.int("max_event_bytes", range: Self.minimumEventBytes...Self.maximumEventBytes) { maxEventBytes = (value + 7) / 8 * 8 }
        if let value = try reader.int("hex_bytes", range: 0...4096) { hexBytes = value }
        if let value = try reader.bool("transcripts") { transcripts = value }
        if let value = try reader.bool("journal") { journal = value }
        if let value = try reader.int("journal_rotate_bytes", range: 65_536...(1 << 40)) { journalRotateBytes = value }
        if let value = try reader.int("journal_max_bytes", range: 65_536...(1 << 42)) { journalMaxBytes = value }
        guard journalMaxBytes >= journalRotateBytes else {
            throw reader.error("journal_max_bytes", "must be at least journal_rotate_bytes (\(journalRotateBytes))")
        }
        if let value = try reader.int("max_subscribers", range: 1...10_000) { maxSubscribers = value }
        if let value = try reader.seconds("heartbeat", range: 1...3600) { heartbeat = value }
        if let value = try reader.string("dashboard_token") {
            guard value.utf8.count >= 16, value.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                throw reader.error("dashboard_token", "must be at least 16 printable characters without spaces")
            }
            dashboardToken = value
        }
    }
}

/// Where a process's services emit their events: the ring the host shares (or its own, with
/// one process), once the host has attached it; until then, and with `events.enabled: false`,
/// emitting costs one lock and does nothing.
public final class HostEvents: Sendable {
    private let state = NIOLockedValueBox<(ring: EventRing?, settings: EventSettings)>((nil, EventSettings()))
    private static let sockets = NIOLockedValueBox<[ObjectIdentifier: HostEvents]>([:])

    public init() {}

    /// Where the service behind a UDP socket the host opened emits (e.g. for the TFTP server's
    /// transfers, which run on sockets of their own), or nil for a socket it did not open.
    public static func of(_ channel: any Channel) -> HostEvents? {
        sockets.withLockedValue { $0[ObjectIdentifier(channel)] }
    }

    static func register(_ events: HostEvents, for channel: any Channel) {
        sockets.withLockedValue { $0[ObjectIdentifier(channel)] = events }
    }

    static func unregister(_ channel: any Channel) {
        _ = sockets.withLockedValue { $0.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    /// The ring events go to (nil: nowhere).
    public var ring: EventRing? { state.withLockedValue { $0.settings.enabled ? $0.ring : nil } }

    /// The ring, even with events off (readers: the dashboard still shows what is there).
    public var readableRing: EventRing? { state.withLockedValue { $0.ring } }

    public var settings: EventSettings { state.withLockedValue { $0.settings } }

    public func attach(ring: EventRing?, settings: EventSettings) {
        state.withLockedValue { $0 = (ring, settings) }
    }

    /// Emits one event outside any connection (e.g. a service's own notice); returns its id,
    /// or 0 when events are off.
    @discardableResult
    public func emit(service: String, kind: String, connection: Int = 0, _ fill: (inout EventBody) -> Void) -> Int {
        let (ring, settings) = state.withLockedValue { ($0.ring, $0.settings) }
        guard settings.enabled, let ring else { return 0 }
        return Self.emit(ring: ring, service: service, kind: kind, connection: connection, fill)
    }

    static func emit(ring: EventRing, service: String, kind: String, connection: Int, _ fill: (inout EventBody) -> Void) -> Int {
        emit(ring: ring, id: ring.allocateID(), service: service, kind: kind, connection: connection, fill)
    }

    static func emit(ring: EventRing, id: Int, service: String, kind: String, connection: Int, _ fill: (inout EventBody) -> Void) -> Int {
        ring.writer.publish(id: id, service: service, kind: kind, connection: connection, time: EventBody.now(), fill)
        return id
    }

    /// Emits a TCP connection's `connection.open` (its id is the connection's) and notes it in
    /// the table of open connections; nil when events are off.
    func connectionOpened(service: String, peer: String, port: Int) -> ConnectionEvents? {
        let (ring, settings) = state.withLockedValue { ($0.ring, $0.settings) }
        guard settings.enabled, let ring else { return nil }
        let id = ring.allocateID()
        let time = EventBody.now()
        _ = Self.emit(ring: ring, id: id, service: service, kind: "connection.open", connection: id) { body in
            body.int("conn", id)
            body.string("transport", "tcp")
            body.string("peer", peer)
            body.int("port", port)
        }
        let entry = ring.connectionOpened(id, service: service, transport: .tcp, peer: peer, port: port, time: time)
        return ConnectionEvents(id: id, service: service, transport: .tcp, peer: peer, port: port, ring: ring, settings: settings, liveEntry: entry)
    }
}

/// Who sent a transcript line.
public enum TranscriptSide: Sendable {
    case client, server

    var mark: String { self == .client ? "C" : "S" }
}

/// The events of one TCP connection: every one carries the connection's id (that of its
/// `connection.open` event), transport and peer, so a consumer can follow one conversation.
/// Emitting is safe from any thread; a connection's own events come from its event loop, so
/// they are in order.
public final class ConnectionEvents: @unchecked Sendable {
    /// The id of the connection's `connection.open` event.
    public let id: Int
    public let service: String
    public let transport: Transport
    public let peer: String
    /// The local port the client connected to.
    public let port: Int
    let ring: EventRing
    public let settings: EventSettings
    let liveEntry: Int?
    /// `,"conn":N,"transport":"tcp","peer":"…"`, encoded once: every event of the connection
    /// starts with it.
    private let members: [UInt8]

    init(id: Int, service: String, transport: Transport, peer: String, port: Int, ring: EventRing, settings: EventSettings, liveEntry: Int?) {
        var body = EventBody(limit: 256)
        body.int("conn", id)
        body.string("transport", transport.rawValue)
        body.string("peer", peer)
        members = body.finish()
        self.id = id
        self.service = service
        self.transport = transport
        self.peer = peer
        self.port = port
        self.ring = ring
        self.settings = settings
        self.liveEntry = liveEntry
    }

    /// Whether line protocols should emit their lines.
    public var transcripts: Bool { settings.transcripts }

    /// One protocol exchange of this connection (e.g. `http.request`).
    @discardableResult
    public func emit(_ kind: String, _ fill: (inout EventBody) -> Void) -> Int {
        let members = members
        return HostEvents.emit(ring: ring, service: service, kind: kind, connection: id) { body in
            body.members(members)
            fill(&body)
        }
    }

    /// One line of the conversation, as sent (without its line ending); secrets are the
    /// caller's to mask before.
    public func line(_ side: TranscriptSide, _ text: String) {
        guard settings.transcripts else { return }
        emit("line") { body in
            body.string("dir", side.mark)
            body.string("text", text)
        }
    }

    /// Each line of a reply that may hold several (`250-…\r\n250 …\r\n`).
    public func lines(_ side: TranscriptSide, _ text: String) {
        guard settings.transcripts else { return }
        for piece in text.split(omittingEmptySubsequences: true, whereSeparator: { $0 == "\r\n" || $0 == "\n" || $0 == "\r" }) {
            line(side, String(piece))
        }
    }

    // MARK: - Finding a connection's events

    private static let registry = NIOLockedValueBox<[ObjectIdentifier: ConnectionEvents]>([:])

    /// The events of the connection `channel` belongs to (an HTTP/2 stream's too), or nil when
    /// events are off or the channel is not one the host accepted.
    public static func of(_ channel: any Channel) -> ConnectionEvents? {
        var current: (any Channel)? = channel
        var depth = 0
        while let candidate = current, depth < 4 {
            if let found = registry.withLockedValue({ $0[ObjectIdentifier(candidate)] }) { return found }
            current = candidate.parent
            depth += 1
        }
        return nil
    }

    static func register(_ events: ConnectionEvents, for channel: any Channel) {
        registry.withLockedValue { $0[ObjectIdentifier(channel)] = events }
    }

    static func unregister(_ channel: any Channel) {
        _ = registry.withLockedValue { $0.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    func released() {
        if let liveEntry { ring.connectionClosed(entry: liveEntry, id: id) }
    }
}
